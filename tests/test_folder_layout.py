"""Folder-per-class data (``train/<class>/``, ``val/``, ``test/``, or bare ``<class>/``) works
with every command that reads a data folder, and an ambiguous folder is one line."""
from __future__ import annotations

import csv
import shutil

import pytest

from fastleaf.cli import main
from fastleaf.data.folders import LayoutError
from fastleaf.data.table import load_table


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTLEAF_CACHE", str(tmp_path / "cache"))


def class_tree(tiny_data, root, val_per_class=0, bare=False):
    """The tiny set's training images as ``root/train/<class>/`` (or ``root/<class>/``), the
    first ``val_per_class`` of each class under ``val/``, its test images under ``test/``."""
    seen = {}
    with open(tiny_data / "train.csv") as f:
        for row in csv.DictReader(f):
            n = seen[row["label"]] = seen.get(row["label"], 0) + 1
            split = "val" if n <= val_per_class else "train"
            folder = root / row["label"] if bare else root / split / row["label"]
            folder.mkdir(parents=True, exist_ok=True)
            shutil.copy(tiny_data / row["image"], folder / f"{n}.jpg")
    if not bare:
        (root / "test").mkdir()
        with open(tiny_data / "test.csv") as f:
            for i, row in enumerate(csv.DictReader(f)):
                shutil.copy(tiny_data / row["image"], root / "test" / f"t{i}.jpg")
    return root


def test_split_folders_give_the_classes_the_val_split_and_the_test_rows(tiny_data, tmp_path,
                                                                        capsys):
    root = class_tree(tiny_data, tmp_path / "leaves", val_per_class=2)
    (root / "train" / "notes.txt").parent.mkdir(exist_ok=True)
    first = sorted(p.name for p in (root / "train").iterdir())[0]
    (root / "train" / first / "README.txt").write_text("not an image")
    (root / "train" / first / ".hidden.jpg").write_bytes(b"")
    table = load_table(root, val_fraction=0.5)
    assert table.classes == sorted(p.name for p in (root / "train").iterdir() if p.is_dir())
    assert len(table.val) == 2 * 6 and len(table.train) == 10 * 6      # val/ decides, not 0.5
    assert all("/val/" in str(p) for p in table.val.paths) and len(table.test) == 18
    out = capsys.readouterr().out
    assert "read as train/<class>/ folders: 60 training, 12 validation (val/), 18 test" in out
    assert "left out 2 hidden or non-image files" in out
    assert not any(p.suffix == ".csv" for p in root.rglob("*"))         # the data is untouched


def test_bare_class_folders_split_at_random(tiny_data, tmp_path):
    root = class_tree(tiny_data, tmp_path / "bare", bare=True)
    table = load_table(root, val_fraction=0.25, seed=0)
    assert table.num_classes == 6 and len(table.val) == 18 and table.test is None


@pytest.mark.parametrize("mess", ["loose image", "empty class", "unknown val class"])
def test_an_ambiguous_folder_is_one_line_naming_what_was_found(tiny_data, tmp_path, capsys,
                                                               mess):
    root = class_tree(tiny_data, tmp_path / "leaves", val_per_class=1)
    some = next(p for p in (root / "train").iterdir() if p.is_dir())
    if mess == "loose image":
        shutil.copy(next(some.iterdir()), root / "train" / "stray.jpg")
        expected = "holds both images (stray.jpg, ...) and class folders"
    elif mess == "empty class":
        (root / "train" / "zz_empty").mkdir()
        expected = "zz_empty: a class folder with no images"
    else:
        (root / "val" / "zz_new").mkdir()
        shutil.copy(next(some.iterdir()), root / "val" / "zz_new" / "x.jpg")
        expected = "zz_new: a validation class with no training folder"
    with pytest.raises(LayoutError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        load_table(root)
    assert main(["data-summary", "--data", str(root)]) == 2
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and expected in lines[0]


@pytest.mark.slow
def test_train_kfold_evaluate_predict_and_check_on_a_folder_layout(tiny_data, tmp_path):
    root = class_tree(tiny_data, tmp_path / "leaves", val_per_class=2)
    common = ["--model", "cnn", "--img-size", "112", "-b", "16", "-j", "0", "--device", "cpu",
              "--no-amp", "--no-progress", "--no-tensorboard", "--epochs", "1"]
    assert main(["check-data", "--data", str(root), "--img-size", "128"]) == 0
    run = tmp_path / "run"
    assert main(["train", "--data", str(root), "--out", str(run), *common]) == 0
    assert main(["train", "--data", str(root), "--folds", "2", "--out", str(tmp_path / "kf"),
                 *common]) == 0
    assert (tmp_path / "kf" / "oof.csv").is_file()
    assert main(["evaluate", "--checkpoint", str(run), "--tta", "none", "--device", "cpu"]) == 0
    out = tmp_path / "sub.csv"
    assert main(["tta-predict", "--data", str(root), "--checkpoint", str(run), "--tta", "none",
                 "--device", "cpu",
                 "--out", str(out)]) == 0
    rows = list(csv.DictReader(open(out)))
    assert len(rows) == 18 and rows[0]["image"].startswith("test/")
    assert list(rows[0]) == ["image", "label", "probability"]        # not a Kaggle submission
    assert rows[0]["label"] in load_table(root).classes and 0 < float(rows[0]["probability"]) <= 1
    assert main(["predict", str(root / "test"), "--checkpoint", str(run), "--device", "cpu",
                 "--out", str(tmp_path / "photos.csv")]) == 0
