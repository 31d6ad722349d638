"""The one reader of finished runs: a run folder and its bare .pt agree, old checkpoints load
with the dataclass defaults, the split and eval loader are the run's own, bad paths are named."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from fastleaf.config import ConfigError, TrainConfig, save_config
from fastleaf.data.augment import IMAGENET_MEAN
from fastleaf.data.table import load_table
from fastleaf.errors import FastleafError, UsageError
from fastleaf.models import create_model
from fastleaf.predict.run_folder import open_run, read_folder_config
from fastleaf.train.checkpoint import save_checkpoint

CLASSES = [f"class_{i}" for i in range(6)]


def write_run(folder, values: dict, classes=CLASSES):
    """A run folder as training leaves it: config.yaml and a best.pt of an untrained model."""
    torch.manual_seed(0)
    folder.mkdir(parents=True, exist_ok=True)
    config = TrainConfig.from_dict(values)
    save_config(config, folder / "config.yaml")
    model = create_model(config.model, len(classes))
    save_checkpoint(folder / "best.pt", {"model_name": config.model, "model": model.state_dict(),
                                         "classes": classes, "config": config.to_dict(),
                                         "epoch": 1, "metrics": {}, "best_score": 0.0})
    return folder


@pytest.fixture(scope="module")
def run(tiny_data, tmp_path_factory):
    classes = load_table(tiny_data).classes
    values = dict(data=str(tiny_data), model="cnn", img_size=112, batch_size=5, seed=2,
                  mean=[0.5, 0.5, 0.5], std=[0.25, 0.25, 0.25], channels_last=False)
    return write_run(tmp_path_factory.mktemp("runs") / "cnn", values, classes)


def test_a_run_folder_and_its_bare_checkpoint_read_the_same(run, tmp_path):
    bare = tmp_path / "elsewhere" / "copy.pt"
    bare.parent.mkdir()
    shutil.copy(run / "best.pt", bare)
    folder, file = open_run(run), open_run(bare)
    assert folder.path == run / "best.pt" and file.path == bare
    assert folder.config == file.config and folder.config.batch_size == 5
    assert folder.classes == file.classes and folder.model_name == file.model_name == "cnn"
    assert folder.data == file.data
    assert folder.data.size == 112 and folder.data.mean == (0.5, 0.5, 0.5)
    x = torch.randn(2, 3, 112, 112)
    a, b = folder.build_model(), file.build_model()
    assert not a.training and not b.training
    with torch.no_grad():
        assert torch.equal(a(x), b(x))
    # the folder's config.yaml says the same as the weights' own record
    assert read_folder_config(run)[0] == folder.config


def test_an_old_checkpoint_takes_the_dataclass_defaults(tmp_path):
    torch.manual_seed(0)
    model = create_model("cnn", len(CLASSES))
    old = {"model": "cnn", "img_size": 112, "seed": 3, "folds": 5, "fold": 1}
    save_checkpoint(tmp_path / "old.pt", {"model_name": "cnn", "model": model.state_dict(),
                                          "classes": CLASSES, "config": old, "epoch": 4,
                                          "metrics": {}, "best_score": 0.0})
    saved = open_run(tmp_path / "old.pt")
    defaults = TrainConfig()
    assert saved.recorded == frozenset(old)
    for name, value in saved.config.to_dict().items():
        assert value == old.get(name, getattr(defaults, name)), name
    # no recorded mean/std: normalised as such runs were, with ImageNet's statistics
    assert saved.data.size == 112 and saved.data.mean == pytest.approx(IMAGENET_MEAN)
    # folds from before near-duplicate grouping existed were split without it
    assert defaults.group_near_duplicates is True
    assert saved.split_key() == (None, None, 3, 1, 5, False)
    x = torch.randn(1, 3, 112, 112)
    with torch.no_grad():
        assert torch.equal(saved.build_model()(x), model.eval()(x))


def test_a_checkpoint_without_any_config_still_opens(tmp_path):
    model = create_model("cnn", 3)
    save_checkpoint(tmp_path / "bare.pt", {"model_name": "cnn", "model": model.state_dict(),
                                           "classes": ["a", "b", "c"]})
    saved = open_run(tmp_path / "bare.pt")
    assert saved.config == TrainConfig() and saved.recorded == frozenset()
    assert saved.data.size == 224


def test_missing_paths_are_named_in_one_line(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    for path, named in ((tmp_path / "nowhere", tmp_path / "nowhere"),
                        (tmp_path / "gone.pt", tmp_path / "gone.pt"),
                        (empty, empty / "best.pt")):
        with pytest.raises(FastleafError) as caught:
            open_run(path)
        message = str(caught.value)
        assert str(named) in message and "\n" not in message


def test_a_broken_recorded_config_is_named(run, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(run, bad)
    (bad / "config.yaml").write_text("model: cnn\nno_such_option: 1\n")
    with pytest.raises(ConfigError, match=r"config.yaml: unknown option.*no_such_option"):
        read_folder_config(bad)


def test_the_split_and_eval_loader_are_the_runs_own(run, tiny_data):
    saved = open_run(run)
    expected = load_table(tiny_data, val_fraction=0.2, seed=2).val
    val = saved.val_samples()
    assert np.array_equal(val.rows, expected.rows) and np.array_equal(val.labels, expected.labels)
    device = torch.device("cpu")
    loader = saved.eval_loader(val, device, workers=0, loader="workers")
    batches = list(loader)
    assert len(batches) == -(-len(val) // 5)                   # the run's batch size
    images = torch.cat([x for x, _ in batches])
    labels = torch.cat([y for _, y in batches])
    assert images.shape == (len(val), 3, 112, 112)
    assert torch.equal(labels, torch.as_tensor(val.labels))     # every row once, in order
    # normalised with the run's mean 0.5 / std 0.25: pixels in [0, 1] land in [-2, 2]
    assert images.min() >= -2.0 - 1e-5 and images.max() <= 2.0 + 1e-5
    assert images.min() < -1.0
    other = saved.eval_loader(val, device, batch_size=64, workers=0, loader="workers")
    assert len(other) == 1 and torch.equal(next(iter(other))[0], images)


def test_a_skip_bad_runs_left_out_rows_stay_out(tiny_data, tmp_path):
    values = dict(data=str(tiny_data), model="cnn", img_size=112, skip_bad=True, seed=2)
    folder = write_run(tmp_path / "skip", values, load_table(tiny_data).classes)
    (folder / "bad_rows.csv").write_text(f"csv,line,severity,problem\n"
                                         f"{tiny_data / 'train.csv'},2,error,unreadable\n"
                                         f"{tiny_data / 'train.csv'},3,warning,tiny\n")
    table = open_run(folder).table()
    full = load_table(tiny_data, val_fraction=0.2, seed=2)
    assert len(table.all_train) == len(full.all_train) - 1
    assert 0 not in set(table.all_train.rows) and 1 in set(table.all_train.rows)


def test_a_final_fit_has_no_validation_split(tiny_data, tmp_path):
    values = dict(data=str(tiny_data), model="cnn", img_size=112, val_fraction=0.0)
    folder = write_run(tmp_path / "final", values, load_table(tiny_data).classes)
    with pytest.raises(UsageError, match="final fit"):
        open_run(folder).val_samples()


def test_the_report_reads_unrecorded_options_at_their_defaults(tmp_path):
    from fastleaf.viz.runs import comparison_rows, read_run

    folder = tmp_path / "old-run"
    folder.mkdir()
    (folder / "config.yaml").write_text("model: vgg16\n")
    (folder / "metrics.csv").write_text("epoch,acc,sum\n1,0.5,1.4\n2,0.6,1.7\n")
    row = comparison_rows([read_run(folder)])[0]
    defaults = TrainConfig()
    assert (row["model"], row["batch_size"], row["lr"]) == ("vgg16", defaults.batch_size,
                                                            defaults.lr)
    assert row["best_epoch"] == 2 and row["setup"] == "fp32"


def test_resuming_an_old_folder_compares_with_the_defaults_it_ran_with(tmp_path):
    from fastleaf.train.checkpoint import CheckpointError
    from fastleaf.train.resume import resume_config

    folder = tmp_path / "old"
    folder.mkdir()
    (folder / "config.yaml").write_text("model: cnn\nepochs: 2\n")   # no val_fraction recorded
    (folder / "last.pt").write_bytes(b"")
    default = TrainConfig().val_fraction
    cfg = resume_config(folder, val_fraction=default, epochs=4)
    assert (cfg.val_fraction, cfg.epochs, cfg.resume) == (default, 4, str(folder))
    with pytest.raises(CheckpointError, match=rf"--val-fraction 0.3 \(the run has {default}\)"):
        resume_config(folder, val_fraction=0.3)
