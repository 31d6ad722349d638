"""Finished work is never lost and bad input gets one line (exit 2) naming the file, flag or row."""
from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys

import pytest
import torch

from fastleaf.cli import main
from fastleaf.config import ConfigError, resolve_config
from fastleaf.errors import FastleafError
from fastleaf.train.checkpoint import CheckpointError, load_checkpoint
from fastleaf.train.records import append_score
from fastleaf.train.trainer import fit
from fastleaf.utils.csv_rows import read_rows

FAST = ["--model", "cnn", "--img-size", "112", "--batch-size", "16", "--workers", "0",
        "--device", "cpu", "--no-progress", "--no-tensorboard", "--augment", "light"]


def config(data, out, **kw):
    base = dict(data=str(data), out=str(out), model="cnn", img_size=112, epochs=1, batch_size=16,
                augment="light", workers=0, progress=False, tensorboard=False, device="cpu",
                val_fraction=0.25)
    return resolve_config(**{**base, **kw})


def snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def one_line_error(capsys) -> str:
    out = capsys.readouterr().out
    assert "Traceback" not in out
    lines = [line for line in out.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, out
    return lines[0]


@pytest.fixture(scope="module")
def finished(tiny_data, tmp_path_factory):
    """A finished one-epoch run; tests copy it before touching it."""
    out = tmp_path_factory.mktemp("guards") / "done"
    fit(config(tiny_data, out))
    return out


@pytest.fixture
def run(finished, tmp_path):
    return shutil.copytree(finished, tmp_path / "runs" / "done")


def test_error_classes_share_one_base():
    from fastleaf.data.imageio import ImageDecodeError
    from fastleaf.data.table import DataError

    from fastleaf.errors import MissingFileError, OutputExistsError, UsageError
    from fastleaf.predict.submission import SubmissionError

    for cls in (DataError, ImageDecodeError, CheckpointError, ConfigError, SubmissionError,
                UsageError, MissingFileError, OutputExistsError):
        assert issubclass(cls, FastleafError)


# ---------------------------------------------------------------- data loss

def test_train_onto_a_finished_run_is_refused(tiny_data, run, capsys):
    before = snapshot(run)
    code = main(["train", "--data", str(tiny_data), "--out", str(run), "--epochs", "1", *FAST])
    assert code == 2
    line = one_line_error(capsys)
    assert "already holds a run" in line and "--resume" in line and "--overwrite" in line
    assert snapshot(run) == before


def test_overwrite_replaces_the_old_run_entirely(tiny_data, run):
    (run / "metrics.csv").write_text("epoch,acc\n1,0.5\n2,0.6\n3,0.7\n")
    fit(config(tiny_data, run, overwrite=True))
    rows = read_rows(run / "metrics.csv")
    assert [r["epoch"] for r in rows] == ["1"]                   # no row of the old run left


def test_resume_with_another_model_writes_nothing(tiny_data, run, capsys):
    before = snapshot(run)
    assert main(["train", "--resume", str(run), "--model", "resnet18"]) == 2
    line = one_line_error(capsys)
    assert "--model 'resnet18'" in line and "'cnn'" in line
    assert snapshot(run) == before
    assert main(["train", "--resume", str(run), "--epochs", "2"]) == 0    # still resumable
    assert load_checkpoint(run / "last.pt")["epoch"] == 2


def test_resume_with_a_checkpoint_that_does_not_fit_writes_nothing(run):
    state = load_checkpoint(run / "last.pt")
    state["model"] = {k: v[:1] if v.dim() else v for k, v in state["model"].items()}
    torch.save(state, run / "last.pt")
    before = snapshot(run)
    with pytest.raises(CheckpointError, match="does not fit"):
        fit(resolve_config(**{**load_yaml_dict(run), "resume": str(run), "out": str(run),
                              "epochs": 2}))
    assert snapshot(run) == before


def load_yaml_dict(run):
    import yaml

    return yaml.safe_load((run / "config.yaml").read_text())


def test_predict_output_that_is_an_input_is_refused(tiny_data, finished, tmp_path, capsys):
    data = shutil.copytree(tiny_data, tmp_path / "data")
    ckpt = shutil.copy(finished / "best.pt", tmp_path / "best.pt")
    image = data / "images" / "0.jpg"
    before = {p: p.read_bytes() for p in (data / "test.csv", ckpt, image)}
    for target in (data / "test.csv", ckpt, image, data / "images" / ".." / "test.csv"):
        code = main(["tta-predict", "--data", str(data), "--checkpoint", str(ckpt),
                     "--out", str(target), "--device", "cpu", "--workers", "0"])
        assert code == 2
        assert "is an input" in one_line_error(capsys)
    assert {p: p.read_bytes() for p in before} == before


def test_check_data_output_that_is_an_input_is_refused(tiny_data, tmp_path, capsys):
    data = shutil.copytree(tiny_data, tmp_path / "data")
    before = (data / "train.csv").read_bytes()
    assert main(["check-data", "--data", str(data), "--out", str(data / "train.csv")]) == 2
    assert "is an input" in one_line_error(capsys)
    assert (data / "train.csv").read_bytes() == before


def test_run_folder_inside_the_data_folder_is_refused(tiny_data, tmp_path):
    data = shutil.copytree(tiny_data, tmp_path / "data")
    with pytest.raises(FastleafError, match="inside the data folder"):
        fit(config(data, data / "runs" / "r"))
    assert not (data / "runs").exists() and not (data / "classes.json").exists()


def append_many(path, tag, count):
    for i in range(count):
        append_score(path, {"run": f"{tag}-{i}", "model": "cnn", "acc": 0.5})


@pytest.mark.slow
def test_concurrent_runs_keep_every_score_row(tmp_path):
    scores = tmp_path / "scores.csv"
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from test_guards import append_many; "
            "from pathlib import Path; append_many(Path(sys.argv[2]), sys.argv[3], 150)")
    here = os.path.dirname(__file__)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.getcwd(), here,
                                                       os.environ.get("PYTHONPATH", "")]))
    procs = [subprocess.Popen([sys.executable, "-c", code, here, str(scores), tag], env=env)
             for tag in ("a", "b")]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    runs = [r["run"] for r in read_rows(scores)]
    assert len(runs) == 300 and len(set(runs)) == 300


# ---------------------------------------------------------------- one-line errors

@pytest.mark.parametrize("size", [7, 32, 64])
def test_image_size_below_the_model_minimum(tiny_data, tmp_path, capsys, size):
    out = tmp_path / "r"
    args = ["train", "--data", str(tiny_data), "--out", str(out), "--epochs", "1", *FAST,
            "--img-size", str(size), "--no-check-data"]
    assert main(args) == 2
    assert f"--img-size {size}" in one_line_error(capsys)
    assert not out.exists()


@pytest.mark.parametrize("text, key", [('epochs: "five"\n', "epochs"),
                                       ("batch_size: [8]\n", "batch_size"),
                                       ("lr: fast\n", "lr"), ("amp: 3\n", "amp"),
                                       ("epochs: [1\n", "line")])
def test_yaml_values_of_the_wrong_type(tiny_data, tmp_path, capsys, text, key):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(text)
    assert main(["train", "--data", str(tiny_data), "--config", str(cfg)]) == 2
    line = one_line_error(capsys)
    assert str(cfg) in line and key in line


@pytest.mark.parametrize("epochs", ["0", "-3"])
def test_epochs_below_one(tiny_data, tmp_path, capsys, epochs):
    out = tmp_path / "r"
    assert main(["train", "--data", str(tiny_data), "--out", str(out), *FAST,
                 "--epochs", epochs]) == 2
    assert "--epochs: epochs must be at least 1" in one_line_error(capsys)
    assert not out.exists() and not (tmp_path / "scores.csv").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_device_without_cuda(tiny_data, tmp_path, capsys):
    args = ["train", "--data", str(tiny_data), "--out", str(tmp_path / "r"), *FAST]
    assert main(args + ["--device", "cuda"]) == 2
    assert "--device cuda: no CUDA device" in one_line_error(capsys)
    assert not (tmp_path / "r").exists()


def test_disk_full_is_one_line_and_keeps_the_old_file(tmp_path, monkeypatch):
    from fastleaf.utils import atomic

    target = tmp_path / "scores.csv"
    target.write_text("old\n")

    def full(self, text):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.Path, "write_text", full)
    with pytest.raises(FastleafError, match="no space left on device"):
        atomic.write_text_atomic(target, "new\n")
    monkeypatch.undo()
    assert target.read_text() == "old\n" and os.listdir(tmp_path) == ["scores.csv"]


def test_disk_full_during_training_exits_2(tiny_data, tmp_path, capsys, monkeypatch):
    from fastleaf.train import checkpoint

    def full(obj, f, *a, **kw):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint.torch, "save", full)
    args = ["train", "--data", str(tiny_data), "--out", str(tmp_path / "r"), "--epochs", "1",
            *FAST, "--no-check-data"]
    assert main(args) == 2
    assert "no space left on device" in one_line_error(capsys)


def test_folder_or_read_only_out_is_refused_before_predicting(tiny_data, finished, tmp_path,
                                                               capsys, monkeypatch):
    from fastleaf.predict import runner

    monkeypatch.setattr(runner, "ensemble_probs", lambda *a: pytest.fail("predicted anyway"))
    base = ["tta-predict", "--data", str(tiny_data), "--checkpoint", str(finished),
            "--device", "cpu", "--workers", "0"]
    assert main(base + ["--out", str(tmp_path)]) == 2
    assert "is a folder" in one_line_error(capsys)
    if os.geteuid() != 0:           # root writes anywhere, so read-only means nothing to it
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o555)
        assert main(base + ["--out", str(locked / "sub.csv")]) == 2
        assert "read-only" in one_line_error(capsys)


def test_broken_or_wrong_shaped_classes_json(tiny_data, tmp_path, capsys):
    data = shutil.copytree(tiny_data, tmp_path / "data")
    for text in ("[not json", json.dumps({"a": 1}), json.dumps(["a", "a"]), json.dumps([1, 2])):
        (data / "classes.json").write_text(text)
        assert main(["check-data", "--data", str(data)]) == 2
        assert str(data / "classes.json") in one_line_error(capsys)


def test_missing_test_image_names_its_line(tiny_data, finished, tmp_path, capsys):
    data = shutil.copytree(tiny_data, tmp_path / "data")
    lines = (data / "test.csv").read_text().splitlines()
    (data / lines[3].strip()).unlink()
    code = main(["tta-predict", "--data", str(data), "--checkpoint", str(finished),
                 "--out", str(tmp_path / "sub.csv"), "--device", "cpu", "--workers", "0"])
    assert code == 2
    assert "test.csv line 4" in one_line_error(capsys)
    assert not (tmp_path / "sub.csv").exists()


def test_check_data_needs_a_worker(tiny_data, capsys):
    assert main(["check-data", "--data", str(tiny_data), "--workers", "0"]) == 2
    assert "--workers 0" in one_line_error(capsys)


def test_weights_only_refusal_gives_no_unsafe_advice(tmp_path):
    class Payload:
        def __reduce__(self):
            return (os.getcwd, ())

    bad = tmp_path / "evil.pt"
    torch.save({"model_name": "cnn", "model": {}, "x": Payload()}, bad)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(bad)
    said = str(err.value)
    assert "weights_only=False" not in said and "Re-running" not in said and "refused" in said
    assert "\n" not in str(err.value)


def test_prediction_refuses_a_decompression_bomb(tiny_data, finished, tmp_path, capsys):
    from test_check_hostile import huge_header_jpeg

    data = shutil.copytree(tiny_data, tmp_path / "data")
    bomb = (data / "test.csv").read_text().splitlines()[2].strip()
    huge_header_jpeg(data / bomb)
    code = main(["tta-predict", "--data", str(data), "--checkpoint", str(finished),
                 "--out", str(tmp_path / "sub.csv"), "--device", "cpu", "--workers", "0",
                 "--loader", "workers"])
    assert code == 2
    assert "pixel limit" in one_line_error(capsys)
    assert not (tmp_path / "sub.csv").exists()
