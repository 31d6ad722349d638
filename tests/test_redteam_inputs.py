"""Hostile or careless input, each finding named: numbers out of range, unreadable files in a
loader, odd image kinds and files, odd class names, paths out of the data folder.  Every one
ends in one line naming the flag, file or row (exit 2), or is skipped and reported."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from fastleaf.cli import main
from fastleaf.config import ConfigError, resolve_config

# a damageable copy of the tiny set, the CSV editor, a finished run and the one-line check
from test_check_data import data, edit_csv  # noqa: F401
from test_guards import FAST, config, finished, one_line_error  # noqa: F401


def train_args(data_dir, out, *extra):
    return ["train", "--data", str(data_dir), "--out", str(out), "--epochs", "1", *FAST,
            "--no-check-data", *extra]


# ---------------------------------------------------------------- F10, F11, F25: numbers

@pytest.mark.parametrize("flag, value, named", [
    ("--lr", "nan", "lr must be a finite number"),
    ("--lr", "inf", "lr must be a finite number"),
    ("--lr", "0", "lr must be above 0"),
    ("--grad-clip", "nan", "grad_clip must be a finite number"),
    ("--weight-decay", "nan", "weight_decay must be a finite number"),
    ("--backbone-lr", "-1", "backbone_lr must be at least 0"),
    ("--plateau-factor", "5", "plateau_factor must be in (0, 1)"),
    ("--plateau-factor", "0", "plateau_factor must be in (0, 1)"),
    ("--min-lr", "nan", "min_lr must be a finite number"),
    ("--keep-top", "-1", "keep_top must be at least 0"),
    ("--val-fraction", "1.5", "val_fraction must be in [0, 1)"),
    ("--label-smoothing", "1", "label_smoothing must be in [0, 1)"),
    ("--mix-prob", "2", "mix_prob must be in [0, 1]"),
    ("--model-ema-decay", "1", "model_ema_decay must be in (0, 1)"),
    ("--drop-path", "nan", "drop_path must be a finite number"),
    ("--threads", "0", "threads must be at least 1"),
    ("--img-size", "100000", "img_size must be in [1, 2048]"),
])
def test_f10_f11_f25_numbers_out_of_range_are_refused(tiny_data, tmp_path, capsys, flag, value,
                                                       named):
    out = tmp_path / "r"
    assert main(train_args(tiny_data, out, flag, value)) == 2
    line = one_line_error(capsys)
    assert flag in line and named in line
    assert not out.exists()


def test_f11_lr_inf_is_refused(tiny_data, tmp_path, capsys):
    assert main(train_args(tiny_data, tmp_path / "r", "--lr", "inf", "--optimizer", "sgd")) == 2
    assert "--lr" in one_line_error(capsys)


def test_f10_nan_in_yaml_names_the_file(tiny_data, tmp_path, capsys):
    yaml_file = tmp_path / "c.yaml"
    yaml_file.write_text("lr: .nan\n")
    assert main(train_args(tiny_data, tmp_path / "r", "--config", str(yaml_file))) == 2
    line = one_line_error(capsys)
    assert str(yaml_file) in line and "lr must be a finite number" in line


@pytest.mark.parametrize("key, stats", [("mean", [float("nan"), 0.5, 0.5]),
                                        ("std", [0.5, 0.5, 0.0])])
def test_f10_mean_and_std_must_be_finite_and_std_positive(key, stats):
    with pytest.raises(ConfigError, match=key):
        resolve_config(**{key: stats})


def test_f25_nproc_below_one_is_refused(tiny_data, tmp_path, capsys):
    out = tmp_path / "r"
    assert main(train_args(tiny_data, out, "--nproc", "-2")) == 2
    assert "--nproc" in one_line_error(capsys)
    assert not out.exists()


@pytest.mark.parametrize("command, flag, value", [
    ("predict", "-b", "0"), ("tta-predict", "-b", "-5"), ("predict", "--crop-fraction", "nan"),
    ("tta-predict", "--workers", "-1")])
def test_f10_prediction_numbers_are_refused(tiny_data, finished, tmp_path, capsys, command, flag,
                                            value):
    target = [str(tiny_data / "images")] if command == "predict" else ["--data", str(tiny_data)]
    out = tmp_path / "p.csv"
    code = main([command, *target, "--checkpoint", str(finished), "--device", "cpu",
                 "--out", str(out), flag, value])
    assert code == 2
    long_name = {"-b": "--batch-size"}.get(flag, flag)
    assert long_name in one_line_error(capsys)
    assert not out.exists()


@pytest.mark.parametrize("weights", ["nan,1", "inf,1"])
def test_f12_member_weights_must_be_finite(weights):
    from fastleaf.errors import UsageError
    from fastleaf.predict.ensemble import parse_weights

    with pytest.raises(UsageError, match="--member-weights"):
        parse_weights(weights, 2)


def test_f10_more_folds_than_the_smallest_class_is_refused(tiny_data, tmp_path, capsys):
    # the tiny set has 12 images in each class
    assert main(train_args(tiny_data, tmp_path / "r", "--folds", "13", "--fold", "0")) == 2
    line = one_line_error(capsys)
    assert "--folds 13" in line and "12" in line


def test_f11_a_diverging_run_stops_and_keeps_no_nan_best(tiny_data, tmp_path):
    from fastleaf.train.loop import DivergedError
    from fastleaf.train.trainer import fit

    out = tmp_path / "r"
    # a finite but absurd rate: the first step overflows the weights
    with pytest.raises(DivergedError, match="not finite"):
        fit(config(tiny_data, out, lr=1e30, optimizer="sgd", epochs=2, check_data=False))
    # epoch 1 diverged: nothing of it is saved, last.pt still holds the start
    assert not (out / "best.pt").exists()
    assert torch.load(out / "last.pt", weights_only=True)["epoch"] == 0


# ---------------------------------------------------------------- F24: image sides

def test_f24_synth_img_size_has_an_upper_bound(tmp_path, capsys):
    out = tmp_path / "s"
    assert main(["synth", "--out", str(out), "--img-size", "100000", "--classes", "2",
                 "--train-per-class", "1", "--test-per-class", "0"]) == 2
    assert "--img-size" in one_line_error(capsys)
    assert not out.exists()


def test_f24_train_img_size_too_large_gives_no_advice_to_enlarge(tiny_data, tmp_path, capsys):
    assert main(train_args(tiny_data, tmp_path / "r", "--img-size", "100000")) == 2
    line = one_line_error(capsys)
    assert "--img-size" in line and "larger" not in line


# ---------------------------------------------------------------- F9: the batch and memory

def test_f9_a_batch_above_the_training_rows_is_lowered_with_a_note(tiny_data, tmp_path, capsys):
    import yaml

    out = tmp_path / "r"
    assert main(train_args(tiny_data, out, "--batch-size", "100000")) == 0
    said = capsys.readouterr().out
    saved = yaml.safe_load((out / "config.yaml").read_text())
    # 6 classes x 12 images, a fifth of each class validates: 60 train
    assert "--batch-size 100000 is more than the 60 training images" in said
    assert saved["batch_size"] == 60


def test_f9_a_batch_that_cannot_fit_in_memory_is_refused_before_allocating():
    from fastleaf.errors import UsageError
    from fastleaf.loaders import training_batch

    assert training_batch(64, 1000, 224, "cpu", free=2**34) == (64, None)
    with pytest.raises(UsageError, match="--batch-size 1000 at --img-size 224 needs 0.7 GiB"):
        training_batch(5000, 1000, 224, "cpu", free=2**29)


# ---------------------------------------------------------------- F6: bad files in workers

def test_f6_predict_on_a_folder_skips_and_reports_unreadable_files(tiny_data, finished,
                                                                   tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in (1, 2, 3):
        shutil.copy(tiny_data / "images" / f"{i}.jpg", photos / f"leaf{i}.jpg")
    (photos / "notes.jpg").write_text("not a photo\n")
    (photos / "empty.jpg").write_bytes(b"")
    out = tmp_path / "p.csv"
    assert main(["predict", str(photos), "--checkpoint", str(finished), "--device", "cpu",
                 "--workers", "2", "--loader", "workers", "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert "Traceback" not in said
    assert "skipped 2 unreadable file(s)" in said
    assert "notes.jpg" in said and "empty.jpg" in said
    rows = out.read_text().splitlines()
    assert rows[0] == "image,label,probability"
    assert sorted(r.split(",")[0] for r in rows[1:]) == ["leaf1.jpg", "leaf2.jpg", "leaf3.jpg"]


def test_f6_tta_predict_bad_image_read_in_a_worker_is_one_line(data, finished, tmp_path, capsys):
    test_rows = (data / "test.csv").read_text().splitlines()
    (data / test_rows[3]).write_bytes(b"\xff\xd8\xff\xe0" + b"\0" * 40)   # a JPEG start only
    code = main(["tta-predict", "--data", str(data), "--checkpoint", str(finished),
                 "--out", str(tmp_path / "sub.csv"), "--device", "cpu", "--workers", "2",
                 "--loader", "workers", "--tta", "none"])
    assert code == 2
    line = one_line_error(capsys)
    assert test_rows[3] in line and "test.csv line 4" in line


def test_f6_train_without_the_check_bad_image_in_a_worker_is_one_line(data, tmp_path, capsys):
    (data / "images" / "3.jpg").write_bytes(b"")
    args = train_args(data, tmp_path / "r", "--loader", "workers", "--workers", "2",
                      "--val-fraction", "0")
    assert main(args) == 2
    line = one_line_error(capsys)
    assert "images/3.jpg" in line and "train.csv line 5" in line


# ---------------------------------------------------------------- F7: one decode, one result

def test_f7_16_bit_greyscale_png_decodes_the_same_on_every_path(tmp_path):
    import numpy as np
    from PIL import Image

    from fastleaf.data.imageio import decode_rgb
    from fastleaf.loaders.cv_augment import decode_rgb_cv2

    ramp = (np.arange(64 * 64).reshape(64, 64) * 16).astype(np.uint16)      # 0 .. 65520
    path = tmp_path / "deep.png"
    Image.fromarray(ramp).save(path)                   # Pillow opens it as mode I;16
    pillow = decode_rgb(path).permute(1, 2, 0).numpy()
    opencv = decode_rgb_cv2(path)
    expected = (ramp >> 8).astype(np.uint8)       # the top 8 bits of each 16-bit sample
    assert (pillow == opencv).all()
    assert (pillow[..., 0] == expected).all() and (pillow[..., 2] == expected).all()


# ---------------------------------------------------------------- F18: only regular files

def finishes(fn, seconds=60):
    """``fn()``'s result, or a failure when it has not returned within ``seconds`` (a read
    blocked on a named pipe never returns)."""
    import threading

    box = {}
    worker = threading.Thread(target=lambda: box.setdefault("result", fn()), daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), f"{fn} still running after {seconds} s"
    return box["result"]


def test_f18_a_named_pipe_is_reported_not_read(data):
    import os

    from fastleaf.data.check import check_data
    from fastleaf.data.preflight import preflight

    os.mkfifo(data / "images" / "pipe.jpg")
    edit_csv(data / "train.csv", 2, image="images/pipe.jpg")
    report = finishes(lambda: check_data(data))
    [bad] = [f for f in report.findings if f.image == "images/pipe.jpg"]
    assert bad.severity == "error" and "not a regular file" in bad.message
    checked = finishes(lambda: preflight(data, skip_bad=True, quiet=True))
    assert 2 in set(checked.drop)


# ---------------------------------------------------------------- F19: the image root

@pytest.mark.parametrize("root", ["/", "../outside"])
def test_f19_an_image_root_outside_the_data_folder_is_refused(data, tmp_path, capsys, root):
    from fastleaf.data.table import DataError, load_table

    (tmp_path / "outside").mkdir()
    (data / "data.yaml").write_text(f"image_root: {root}\n")
    edit_csv(data / "train.csv", 2, image="etc/passwd")
    with pytest.raises(DataError, match="image_root"):
        load_table(data)
    assert main(["check-data", "--data", str(data)]) == 2
    assert "image_root" in one_line_error(capsys)


def test_f19_a_derived_folder_may_point_at_the_data_folder_it_came_from(data, tmp_path):
    from fastleaf.data.table import load_table

    derived = tmp_path / "derived"                  # as fastleaf pseudo-label writes one
    derived.mkdir()
    for name in ("train.csv", "test.csv"):
        shutil.copy(data / name, derived / name)
    (derived / "data.yaml").write_text(f"image_root: {data}\n")
    assert load_table(derived).all_train.paths[0].parent == data / "images"


# ---------------------------------------------------------------- F20: labels and spaces

def spaced_twin(data):
    """Row 4 (line 6) gets row 3's label with a trailing space."""
    import pandas as pd

    label = pd.read_csv(data / "train.csv", dtype=str).loc[3, "label"]
    edit_csv(data / "train.csv", 4, label=label + " ")
    return label


def test_f20_labels_differing_only_in_spaces_are_an_error_naming_both_rows(data, tmp_path,
                                                                          capsys):
    from fastleaf.data.check import check_data
    from fastleaf.data.table import DataError, load_table

    label = spaced_twin(data)
    [f] = [f for f in check_data(data).findings if f.kind == "spaced_label"]
    assert f.severity == "error" and f.line == 6 and "line 5" in f.message    # row 3
    with pytest.raises(DataError, match=f"{label!r} and {label + ' '!r}"):
        load_table(data)
    assert main(train_args(data, tmp_path / "r")) == 2       # without the check, too
    assert "differ only in spaces" in one_line_error(capsys)


# ---------------------------------------------------------------- F21: printed user strings

HOSTILE = "[link=file:///etc/passwd]evil[/link]\x1b[2J"


def rename_class(data, new_name):
    """Every row of the first row's class gets ``new_name``."""
    import pandas as pd

    frame = pd.read_csv(data / "train.csv", dtype=str, keep_default_na=False)
    frame.loc[frame["label"] == frame.loc[0, "label"], "label"] = new_name
    frame.to_csv(data / "train.csv", index=False)


def test_f21_data_summary_prints_class_names_as_text(data, capsys):
    rename_class(data, HOSTILE)
    assert main(["data-summary", "--data", str(data)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out                               # no escape code reaches the terminal
    assert "[link=file:///etc/passwd]evil[/link]\\x1b[2J" in out     # the markup stays text


def test_f21_predict_prints_class_names_as_text(data, tmp_path, capsys):
    from fastleaf.train.trainer import fit

    rename_class(data, HOSTILE)
    fit(config(data, tmp_path / "run", check_data=False))
    capsys.readouterr()
    assert main(["predict", str(data / "images" / "0.jpg"), "--checkpoint", str(tmp_path / "run"),
                 "--device", "cpu", "--top", "6", "--workers", "0"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "[link=file:///etc/passwd]evil" in out


# ---------------------------------------------------------------- F17: YAML files

def alias_bomb(levels: int = 5) -> str:
    """A few hundred bytes of nested YAML aliases that expand to 9**levels strings."""
    lines = ['l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels + 1):
        lines.append(f"l{i}: &l{i} [{','.join([f'*l{i - 1}'] * 9)}]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("content, said", [
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe", "not a UTF-8 text file"),
    (alias_bomb().encode(), "aliases (*name) are not allowed")])
def test_f17_a_binary_or_alias_bomb_config_is_one_short_line(tiny_data, tmp_path, capsys,
                                                              content, said):
    cfg = tmp_path / "c.yaml"
    cfg.write_bytes(content)
    assert main(train_args(tiny_data, tmp_path / "r", "--config", str(cfg))) == 2
    line = one_line_error(capsys)
    assert str(cfg) in line and said in line and len(line) < 500


def test_f17_an_alias_bomb_in_data_yaml_is_refused(data):
    from fastleaf.data.table import DataError, load_table

    (data / "data.yaml").write_text(alias_bomb())
    with pytest.raises(DataError, match="aliases"):
        load_table(data)


# ---------------------------------------------------------------- F15, F16: weight files

def test_f15_a_corrupt_safetensors_file_is_one_line(tiny_data, tmp_path, capsys):
    bad = tmp_path / "w.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}" + b"\0" * 64)
    assert main(train_args(tiny_data, tmp_path / "r", "--weights", str(bad))) == 2
    line = one_line_error(capsys)
    assert str(bad) in line and "safetensors" in line


def test_f15_weights_pickle_refusal_gives_no_unsafe_advice(tmp_path):
    import os

    from fastleaf.errors import FastleafError
    from fastleaf.models.weights import read_weights

    class Payload:
        def __reduce__(self):
            return (os.getcwd, ())

    bad = tmp_path / "evil.pth"
    torch.save({"fc.weight": torch.zeros(2), "x": Payload()}, bad)
    with pytest.raises(FastleafError) as err:
        read_weights(bad)
    said = str(err.value)
    assert "weights_only" not in said and "\n" not in said and str(bad) in said


def test_f16_a_checkpoint_whose_weights_do_not_fit_its_classes_is_one_line(finished, tmp_path,
                                                                          capsys, tiny_data):
    state = torch.load(finished / "best.pt", weights_only=True)
    state["classes"] = state["classes"][:-1]           # one class fewer than the head has
    edited = tmp_path / "edited.pt"
    torch.save(state, edited)
    assert main(["predict", str(tiny_data / "images" / "0.jpg"), "--checkpoint", str(edited),
                 "--device", "cpu", "--workers", "0"]) == 2
    line = one_line_error(capsys)
    assert str(edited) in line and "do not fit" in line


# ---------------------------------------------------------------- F23: threads

def test_f23_check_data_caps_its_reader_threads(tiny_data, capsys):
    assert main(["check-data", "--data", str(tiny_data), "--workers", "100000"]) == 0
    out = capsys.readouterr().out
    assert "reading with 64" in out and "OK" in out


# ---------------------------------------------------------------- F26: damaged JPEG data

def test_f26_half_a_jpeg_with_an_end_marker_is_corrupt_and_prints_no_stray_line(data, capfd):
    from fastleaf.data.check import check_data

    image = data / "images" / "4.jpg"
    whole = image.read_bytes()
    image.write_bytes(whole[:len(whole) // 2] + b"\xff\xd9")
    report = check_data(data)
    [bad] = [f for f in report.findings if f.image == "images/4.jpg"]
    assert bad.severity == "error" and bad.kind == "corrupt" and "JPEG data" in bad.message
    assert "Corrupt JPEG data" not in capfd.readouterr().err    # libjpeg's own line is kept


@pytest.mark.parametrize("weight", ["NaN", "Infinity"])
def test_f12_a_blend_file_with_a_non_finite_weight_is_refused(tmp_path, weight):
    from fastleaf.data.table import DataError
    from fastleaf.predict.blend import read_blend

    blend = tmp_path / "blend.json"
    blend.write_text('{"members": [{"run": "a", "weight": %s, "temperature": 1.0}, '
                     '{"run": "b", "weight": 1.0, "temperature": 1.0}]}' % weight)
    with pytest.raises(DataError, match="finite weights"):
        read_blend(blend)
