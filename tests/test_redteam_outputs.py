"""Nothing lost, nothing silently wrong: no command writes over a run's or a data folder's
files or its own inputs; one training per run folder; ignored options, the data a run saw,
overlong names and full or read-only disks."""
from __future__ import annotations

import shutil

import pytest

from fastleaf.cli import main
from fastleaf.config import resolve_config
from fastleaf import kfold
from fastleaf.train.trainer import fit

from test_guards import one_line_error   # the suite's one reader of a one-line error

PREDICT = ["--device", "cpu", "--workers", "0", "--tta", "none"]


def quick(data, out, **kw):
    base = dict(data=str(data), out=str(out), model="cnn", img_size=112, epochs=1, batch_size=16,
                augment="none", workers=0, progress=False, tensorboard=False, device="cpu",
                val_fraction=0.25, amp=False)
    return resolve_config(**{**base, **kw})


def snapshot(root):
    return {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def made(tiny_data, tmp_path_factory):
    """A two-epoch run keeping its top 2 epochs, and a 2-fold run."""
    root = tmp_path_factory.mktemp("redteam")
    fit(quick(tiny_data, root / "run", epochs=2, keep_top=2))
    kfold.fit_folds(quick(tiny_data, root / "k2", folds=2, val_fraction=None))
    return root


@pytest.fixture
def work(made, tiny_data, tmp_path):
    """Copies of the runs and the data, so a test may try to destroy them."""
    shutil.copytree(made, tmp_path, dirs_exist_ok=True)
    shutil.copytree(tiny_data, tmp_path / "data")
    return tmp_path


def test_f1_tta_predict_out_onto_a_checkpoint_is_refused(work, capsys):
    run = work / "run"
    before = snapshot(work)
    for target in ("last.pt", "config.yaml", "metrics.csv", "top/epoch002.pt", "top.json"):
        code = main(["tta-predict", "--data", str(work / "data"), "--checkpoint",
                     str(run / "best.pt"), "--out", str(run / target), *PREDICT])
        assert code == 2
        assert "a file of the run folder" in one_line_error(capsys)
    assert snapshot(work) == before


def test_f1_check_data_and_predict_out_onto_run_files_are_refused(work, capsys):
    run, data = work / "run", work / "data"
    before = snapshot(work)
    assert main(["check-data", "--data", str(data), "--out", str(run / "config.yaml")]) == 2
    assert "a file of the run folder" in one_line_error(capsys)
    assert main(["check-data", "--data", str(data), "--near-duplicates",
                 "--pairs-out", str(run / "metrics.csv")]) == 2
    assert "a file of the run folder" in one_line_error(capsys)
    assert main(["predict", str(data / "images"), "--checkpoint", str(run),
                 "--out", str(run / "metrics.csv"), *PREDICT]) == 2
    assert "a file of the run folder" in one_line_error(capsys)
    assert snapshot(work) == before


def test_f1_a_new_file_in_a_run_folder_is_still_allowed(work, capsys):
    run = work / "run"
    assert main(["tta-predict", "--data", str(work / "data"), "--checkpoint", str(run),
                 "--out", str(run / "submission.csv"), *PREDICT]) == 0
    assert (run / "submission.csv").read_text().startswith("image,label")


def test_f2_tta_predict_out_onto_a_blend_member_is_refused(work, capsys):
    assert main(["blend", str(work / "k2"), "--out", str(work / "blend.json")]) == 0
    capsys.readouterr()
    before = snapshot(work)
    # a copy of a member outside any run folder: only the blend says it is an input
    member = work / "member.pt"
    shutil.copy(work / "k2" / "fold0" / "best.pt", member)
    for target in (work / "k2" / "fold0" / "best.pt", work / "blend.json"):
        code = main(["tta-predict", "--data", str(work / "data"), "--blend",
                     str(work / "blend.json"), "--out", str(target), *PREDICT])
        assert code == 2
        one_line_error(capsys)
    assert snapshot(work) == {**before, member: member.read_bytes()}


def test_f2_blend_members_are_known_before_the_output_check(work, tmp_path):
    from fastleaf.predict.runner import blend_inputs

    assert main(["blend", str(work / "k2"), "--out", str(work / "blend.json")]) == 0
    inputs = {p.resolve() for p in blend_inputs(work / "blend.json")}
    assert (work / "k2" / "fold0" / "best.pt").resolve() in inputs
    assert (work / "k2" / "fold1" / "best.pt").resolve() in inputs


def test_f3_blend_out_onto_a_members_oof_is_refused(work, capsys):
    before = snapshot(work)
    for name in ("oof.csv", "oof_probs.npy", "folds.csv"):
        assert main(["blend", str(work / "k2"), "--out", str(work / "k2" / name)]) == 2
        assert "writing it would destroy it" in one_line_error(capsys)
    assert main(["blend", str(work / "k2"), "--out", str(work / "data" / "test.csv")]) == 2
    assert "a file of the data folder" in one_line_error(capsys)
    assert snapshot(work) == before


def test_f4_average_checkpoints_out_onto_data_or_inputs_is_refused(work, capsys):
    run, data = work / "run", work / "data"
    before = snapshot(work)
    for target in (data / "test.csv", run / "top" / "epoch001.pt", run / "best.pt",
                   data / "images" / "0.jpg"):
        assert main(["average-checkpoints", str(run), "--top", "2", "--out", str(target)]) == 2
        one_line_error(capsys)
    assert snapshot(work) == before
    assert main(["average-checkpoints", str(run), "--top", "2"]) == 0
    assert main(["average-checkpoints", str(run), "--top", "2"]) == 0     # its own file again
    assert (run / "average-top2.pt").is_file()


def test_f4_folder_outputs_never_replace_run_or_data_files(work, capsys):
    run, data = work / "run", work / "data"
    before = snapshot(work)
    assert main(["pseudo-label", "--data", str(data), "--checkpoint", str(run),
                 "--out", str(run), *PREDICT]) == 2     # would replace the run's classes.json
    assert "a file of the run folder" in one_line_error(capsys)
    assert main(["bench", "--models", "cnn", "--loaders", "synthetic", "--modes", "infer",
                 "--json", str(run / "metrics.csv")]) == 2
    assert "a file of the run folder" in one_line_error(capsys)
    assert all(snapshot(work)[p] == b for p, b in before.items())


def test_f4_viz_and_report_never_write_among_the_images_or_over_their_input(work, capsys):
    run, data = work / "run", work / "data"
    before = snapshot(work)
    assert main(["viz", "filters", "--checkpoint", str(run), "--out", str(data / "images")]) == 2
    assert "inside the data folder" in one_line_error(capsys)
    assert main(["report", str(run), "--out", str(data), "--no-confusion"]) == 2
    assert "inside the data folder" in one_line_error(capsys)
    picture = work / "pics" / "input.png"
    picture.parent.mkdir()
    shutil.copy(data / "images" / "0.jpg", picture)
    assert main(["viz", "feature-maps", "--checkpoint", str(run), "--image", str(picture),
                 "--out", str(picture.parent)]) == 2
    assert "this is an input" in one_line_error(capsys)
    assert snapshot(work) == {**before, picture: picture.read_bytes()}


# ---------------------------------------------------------------- one training per run folder

TRAIN = ["--model", "cnn", "--img-size", "112", "--batch-size", "16", "--workers", "0",
         "--device", "cpu", "--no-progress", "--no-tensorboard", "--augment", "none",
         "--epochs", "1", "--no-check-data", "--no-amp"]


def test_f5_second_train_on_a_held_run_folder_is_refused_naming_the_holder(tiny_data, tmp_path,
                                                                          capsys):
    import os
    import socket

    from fastleaf.train.lock import hold_run_folder

    out = tmp_path / "r"
    with hold_run_folder(out):
        before = snapshot(out)
        for extra in ([], ["--overwrite"]):
            assert main(["train", "--data", str(tiny_data), "--out", str(out), *TRAIN,
                         *extra]) == 2
            line = one_line_error(capsys)
            assert f"pid {os.getpid()} on {socket.gethostname()}" in line and "started" in line
        assert snapshot(out) == before
    assert not out.exists()              # the holder made the folder and left it empty
    assert main(["train", "--data", str(tiny_data), "--out", str(out), *TRAIN]) == 0
    assert not (out / ".lock").exists()


@pytest.mark.slow
def test_f5_a_lock_left_by_a_killed_process_does_not_block(tiny_data, tmp_path):
    import os
    import subprocess
    import sys

    out = tmp_path / "r"
    code = ("import os, signal, sys; from pathlib import Path; "
            "from fastleaf.train.lock import hold_run_folder; "
            "h = hold_run_folder(Path(sys.argv[1])); h.__enter__(); "
            "Path(sys.argv[1], 'config.yaml').write_text('{}'); "
            "os.kill(os.getpid(), signal.SIGKILL)")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.getcwd(),
                                                       os.environ.get("PYTHONPATH", "")]))
    assert subprocess.run([sys.executable, "-c", code, str(out)], env=env).returncode != 0
    assert (out / ".lock").exists()      # the file stays, its lock went with the process
    assert main(["train", "--data", str(tiny_data), "--out", str(out), *TRAIN,
                 "--overwrite"]) == 0


# ---------------------------------------------------------------- options that were ignored

def test_f25_fold_without_folds_is_refused(tiny_data, tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["train", "--data", str(tiny_data), "--out", str(out), *TRAIN,
                 "--fold", "1"]) == 2
    assert "--folds" in one_line_error(capsys)
    assert not out.exists()


def test_f25_resume_with_another_out_is_refused(made, tmp_path, capsys):
    run = shutil.copytree(made / "run", tmp_path / "run")
    before = snapshot(run)
    other = tmp_path / "other"
    assert main(["train", "--resume", str(run), "--out", str(other), "--epochs", "3"]) == 2
    line = one_line_error(capsys)
    assert "--out" in line and "its own folder" in line
    assert snapshot(run) == before and not other.exists()


def test_f25_resume_with_fewer_epochs_than_trained_is_refused(made, tmp_path, capsys):
    from fastleaf.train.checkpoint import load_checkpoint

    run = shutil.copytree(made / "run", tmp_path / "run")      # trained 2 epochs
    before = snapshot(run)
    assert main(["train", "--resume", str(run), "--epochs", "1"]) == 2
    line = one_line_error(capsys)
    assert "--epochs 1" in line and "already trained 2 epochs" in line
    assert snapshot(run) == before
    assert load_checkpoint(run / "last.pt")["config"]["epochs"] == 2


@pytest.mark.slow
def test_f25_out_dot_names_the_folder_in_scores(tiny_data, tmp_path, monkeypatch):
    from fastleaf.utils.csv_rows import read_rows

    here = tmp_path / "parent" / "dotrun"
    here.mkdir(parents=True)
    monkeypatch.chdir(here)
    assert main(["train", "--data", str(tiny_data), "--out", ".", *TRAIN]) == 0
    rows = read_rows(tmp_path / "parent" / "scores.csv")
    assert [r["run"] for r in rows] == ["dotrun"]
    assert not (here / "scores.csv").exists()


# ---------------------------------------------------------------- the data a run was scored on

@pytest.mark.slow
def test_f22_evaluate_from_another_folder_scores_the_runs_own_data(tiny_data, tmp_path,
                                                                   monkeypatch, capsys):
    from fastleaf.train.checkpoint import load_checkpoint

    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    shutil.copytree(tiny_data, home / "data")
    monkeypatch.chdir(home)
    assert main(["train", "--data", "data", "--out", str(tmp_path / "r"), *TRAIN]) == 0
    assert load_checkpoint(tmp_path / "r" / "best.pt")["config"]["data"] == str(home / "data")
    # another data set of the same classes under the same relative name
    other = shutil.copytree(tiny_data, elsewhere / "data")
    lines = (other / "train.csv").read_text().splitlines()
    (other / "train.csv").write_text("\n".join(lines[:1] + lines[1:][::-1]) + "\n")
    monkeypatch.chdir(elsewhere)
    capsys.readouterr()
    args = ["evaluate", "--checkpoint", str(tmp_path / "r"), "--tta", "none", "--device", "cpu",
            "--workers", "0"]
    assert main(args) == 0
    scored = capsys.readouterr().out
    # the run's own validation rows: from its data, not from ./data
    from fastleaf.predict.run_folder import open_run

    own = open_run(tmp_path / "r").val_samples()
    assert own.csv == home / "data" / "train.csv"
    assert f"validation split ({len(own)} rows)" in scored
    from fastleaf.utils.csv_rows import read_rows

    assert float(read_rows(tmp_path / "r" / "metrics.csv")[0]["acc"]) == pytest.approx(
        float(scored.split("│")[2]), abs=1e-4)
    assert main([*args, "--data", str(other)]) == 2
    line = one_line_error(capsys)
    assert "is not the train.csv" in line and str(other / "train.csv") in line


# ---------------------------------------------------------------- names over 255 bytes

LONG = "n" * 300


def test_f13_a_test_csv_row_with_an_overlong_name_is_one_line(work, capsys):
    data = work / "data"
    with open(data / "test.csv", "a") as f:
        f.write(f"images/{LONG}.jpg\n")
    assert main(["tta-predict", "--data", str(data), "--checkpoint", str(work / "run"),
                 "--out", str(work / "s.csv"), *PREDICT]) == 2
    line = one_line_error(capsys)
    assert "test.csv row" in line and "304 bytes" in line and len(line) < 300
    assert main(["check-data", "--data", str(data), "--no-decode"]) == 1
    assert "name_too_long" in capsys.readouterr().out


@pytest.mark.parametrize("where", ["predict-path", "predict-out", "train-out", "report-out"])
def test_f13_an_overlong_path_given_on_the_command_line_is_one_line(work, capsys, where):
    run, data = work / "run", work / "data"
    args = {"predict-path": ["predict", str(data / "images" / f"{LONG}.jpg"), "--checkpoint",
                             str(run), *PREDICT],
            "predict-out": ["predict", str(data / "images"), "--checkpoint", str(run),
                            "--out", str(work / f"{LONG}.csv"), *PREDICT],
            "train-out": ["train", "--data", str(data), "--out", str(work / LONG), *TRAIN],
            "report-out": ["report", str(run), "--out", str(work / LONG / "r"),
                           "--no-confusion"]}[where]
    assert main(args) == 2
    line = one_line_error(capsys)
    assert "longer than the file system allows" in line and len(line) < 400


# ---------------------------------------------------------------- full or read-only disks

def disk_full(*_a, **_kw):
    import errno

    raise OSError(errno.ENOSPC, "No space left on device")


class FillsUp:
    """A file that takes ``room`` bytes, then is full (as a real disk: the error comes from
    inside ``torch.save``'s zip writer)."""

    def __init__(self, path, mode="wb", room=2000):
        self.f, self.room = open(path, mode), room

    def write(self, data):
        self.room -= len(data)
        if self.room < 0:
            disk_full()
        return self.f.write(data)

    def __getattr__(self, name):
        return getattr(self.f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()


def test_f14_checkpoint_write_on_a_full_disk_is_one_line_and_leaves_no_half_started_run(
        tiny_data, tmp_path, capsys, monkeypatch):
    from fastleaf.train import checkpoint

    out = tmp_path / "r"
    monkeypatch.setattr(checkpoint, "open", FillsUp, raising=False)
    assert main(["train", "--data", str(tiny_data), "--out", str(out), *TRAIN]) == 2
    line = one_line_error(capsys)
    assert "no space left on device" in line and "last.pt" in line
    assert not out.exists()                # no config.yaml without a last.pt
    monkeypatch.undo()
    assert main(["train", "--data", str(tiny_data), "--out", str(out), *TRAIN]) == 0


@pytest.mark.slow
def test_f14_a_full_disk_mid_run_keeps_the_run_resumable(made, tmp_path, capsys, monkeypatch):
    from fastleaf.train import checkpoint

    run = shutil.copytree(made / "run", tmp_path / "run")
    last = (run / "last.pt").read_bytes()
    monkeypatch.setattr(checkpoint, "open", FillsUp, raising=False)
    assert main(["train", "--resume", str(run), "--epochs", "3"]) == 2
    assert "no space left on device" in one_line_error(capsys)
    assert (run / "last.pt").read_bytes() == last
    monkeypatch.undo()
    assert main(["train", "--resume", str(run), "--epochs", "3"]) == 0


@pytest.mark.parametrize("command", ["report", "synth", "demo", "pseudo-label"])
def test_f14_a_read_only_output_folder_is_refused_before_the_work(work, capsys, monkeypatch,
                                                                  command):
    import os

    from fastleaf.predict import ensemble

    locked = work / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: not str(p).startswith(str(locked))
                        and real_access(p, mode, **kw))     # root ignores chmod: say it is
    monkeypatch.setattr(ensemble, "ensemble_probs", lambda *a, **kw: pytest.fail("predicted"))
    out = str(locked / "out")
    args = {"report": ["report", str(work / "run"), "--out", out, "--no-confusion"],
            "synth": ["synth", "--out", out],
            "demo": ["demo", "--out", out, "--epochs", "1", "--device", "cpu"],
            "pseudo-label": ["pseudo-label", "--data", str(work / "data"), "--checkpoint",
                             str(work / "run"), "--out", out, *PREDICT]}[command]
    assert main(args) == 2
    assert "read-only" in one_line_error(capsys)
    assert not (locked / "out").exists()


@pytest.mark.parametrize("command", ["report", "synth"])
def test_f14_a_full_disk_while_writing_is_one_line_naming_the_path(work, capsys, monkeypatch,
                                                                   command):
    import pathlib

    out = work / "out"
    if command == "report":
        monkeypatch.setattr(pathlib.Path, "mkdir", disk_full)
        args = ["report", str(work / "run"), "--out", str(out), "--no-confusion"]
    else:
        monkeypatch.setattr(pathlib.Path, "write_bytes", disk_full)
        args = ["synth", "--out", str(out)]
    assert main(args) == 2
    line = one_line_error(capsys)
    assert "no space left on device" in line and str(out) in line
