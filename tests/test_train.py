import csv

import pytest
import torch

from fastleaf.cli import main
from fastleaf.config import resolve_config
from fastleaf.errors import FastleafError
from fastleaf.models import create_model
from fastleaf.train.checkpoint import load_checkpoint
from fastleaf.train.loop import train_one_epoch
from fastleaf.train.precision import create_precision
from fastleaf.train.trainer import fit

REQUIRED = "epoch,train_loss,val_loss,acc,f1_macro,kappa,sum,img_per_s".split(",")


def quick_config(data, out, **kw):
    base = dict(data=str(data), out=str(out), model="cnn", img_size=112, epochs=1, batch_size=16,
                lr=1e-3, augment="light", workers=0, progress=False, tensorboard=False,
                val_fraction=0.25, device="cpu")
    base.update(kw)
    return resolve_config(**base)


@pytest.mark.slow
def test_short_training_lowers_loss_and_beats_chance(tiny_data, tmp_path):
    result = fit(quick_config(tiny_data, tmp_path / "run", epochs=8, tensorboard=True))
    rows = list(csv.DictReader(open(result.run_dir / "metrics.csv")))
    assert [int(r["epoch"]) for r in rows] == list(range(1, 9))
    assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])
    assert result.best["acc"] > 2.5 / 6            # chance is 1/6
    assert result.best["sum"] == pytest.approx(max(float(r["sum"]) for r in rows), rel=1e-8)
    best = load_checkpoint(result.run_dir / "best.pt")
    assert best["epoch"] == result.best_epoch and best["model_name"] == "cnn"
    assert len(best["classes"]) == 6
    assert list((result.run_dir / "tb").glob("events.out.tfevents.*"))
    scores = list(csv.DictReader(open(tmp_path / "scores.csv")))
    assert scores[-1]["run"] == "run" and float(scores[-1]["sum"]) == pytest.approx(
        result.best["sum"], rel=1e-5)


class RepeatLoader:
    """Two fixed random batches: enough to exercise a train step."""

    def __init__(self, channels_last=False, size=112):
        g = torch.Generator().manual_seed(0)
        self.batches = [(torch.randn(4, 3, size, size, generator=g), torch.tensor([0, 1, 2, 1]))
                        for _ in range(2)]
        if channels_last:
            self.batches = [(x.contiguous(memory_format=torch.channels_last), y)
                            for x, y in self.batches]

    def __len__(self):
        return len(self.batches)

    def __iter__(self):
        return iter(self.batches)


@pytest.mark.parametrize("amp, channels_last", [(True, False), (False, True), (True, True)])
@pytest.mark.parametrize("name", ["cnn", "resnet18"])
@pytest.mark.slow
def test_speed_flags_run_train_steps_on_cpu(name, amp, channels_last):
    model = create_model(name, 3)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    precision = create_precision(amp, torch.device("cpu"))
    assert precision.name == ("bf16" if amp else "fp32")
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    before = [p.detach().clone() for p in model.parameters()]
    stats = train_one_epoch(model, RepeatLoader(channels_last), opt, precision,
                            torch.nn.CrossEntropyLoss())
    assert stats.images == 8 and torch.isfinite(torch.tensor(stats.loss))
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


@pytest.mark.slow
def test_compile_runs_train_steps_on_cpu(tiny_data, tmp_path):
    result = fit(quick_config(tiny_data, tmp_path / "c", compile=True, amp=True,
                              channels_last=True))
    state = load_checkpoint(result.run_dir / "last.pt")
    assert not any(k.startswith("_orig_mod") for k in state["model"])   # clean keys saved


def test_fp16_on_cpu_is_refused():
    with pytest.raises(ValueError, match="bf16"):
        create_precision(True, torch.device("cpu"), "fp16")


@pytest.mark.slow
def test_cli_end_to_end_writes_run_folder(tiny_data, tmp_path, capsys):
    out = tmp_path / "cli-run"
    code = main(["train", "--data", str(tiny_data), "--model", "cnn", "--img-size", "112",
                 "--epochs", "1", "--batch-size", "16", "--workers", "1", "--out", str(out),
                 "--amp", "--channels-last", "--no-progress", "--device", "cpu"])
    assert code == 0
    header = (out / "metrics.csv").read_text().splitlines()[0].split(",")
    assert all(column in header for column in REQUIRED)
    for name in ("best.pt", "last.pt", "config.yaml", "classes.json"):
        assert (out / name).is_file()
    assert list((out / "tb").glob("events.out.tfevents.*"))
    assert "best checkpoint" in capsys.readouterr().out


def test_config_file_then_flags_override(tmp_path, tiny_data):
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("model: resnet18\nepochs: 7\nbatch-size: 12\n")
    cfg = resolve_config(cfg_file, epochs=2)
    assert (cfg.model, cfg.epochs, cfg.batch_size) == ("resnet18", 2, 12)
    cfg_file.write_text("epochz: 3\n")
    with pytest.raises(ValueError, match="epochz"):
        resolve_config(cfg_file)


def test_cli_reports_bad_data_in_one_line(tmp_path, capsys):
    (tmp_path / "train.csv").write_text("image,label\nimages/0.jpg,a\n../evil.jpg,b\n")
    code = main(["train", "--data", str(tmp_path), "--no-progress"])
    assert code == 2
    out = " ".join(capsys.readouterr().out.split())
    # not a terminal: one finding a line, ``severity kind file:line 'image': problem``
    assert f"error path_escape {tmp_path / 'train.csv'}:3 '../evil.jpg': image path escapes " \
           f"the data folder" in out


def test_bad_rows_stop_training_or_are_skipped(tiny_data, tmp_path):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    lines = (data / "train.csv").read_text().splitlines()
    broken = lines[5].split(",")[0]
    (data / broken).write_bytes((data / broken).read_bytes()[:300])     # truncated JPEG
    with pytest.raises(FastleafError, match=r"train\.csv(:| line )6"):
        fit(quick_config(data, tmp_path / "stop"))
    assert not (tmp_path / "stop" / "best.pt").exists()
    result = fit(quick_config(data, tmp_path / "skip", skip_bad=True))
    assert len(load_table_rows(result.run_dir)) == 1
    bad = (result.run_dir / "bad_rows.csv").read_text()
    assert broken in bad and ",6," in bad


def load_table_rows(run_dir):
    return list(csv.DictReader(open(run_dir / "metrics.csv")))


def test_unset_speed_flags_take_the_device_defaults(monkeypatch):
    from fastleaf.train import build, precision

    cpu = torch.device("cpu")
    for native in (False, True):
        monkeypatch.setattr(precision, "amp_is_fast", lambda device, native=native: native)
        cfg = build.with_speed_defaults(resolve_config(), cpu)
        assert (cfg.amp, cfg.channels_last) == (native, True)
    explicit = build.with_speed_defaults(resolve_config(amp=False, channels_last=False), cpu)
    assert (explicit.amp, explicit.channels_last) == (False, False)


def test_a_run_that_cannot_start_leaves_no_folder(tiny_data, tmp_path):
    with pytest.raises(ValueError, match="unknown loader"):
        fit(quick_config(tiny_data, tmp_path / "never", loader="nope"))
    assert not (tmp_path / "never").exists()
