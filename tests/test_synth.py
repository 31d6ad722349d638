"""Tests for fastleaf.data.synth: Kaggle layout, determinism, class separability, safety."""
from __future__ import annotations

import csv
import itertools
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fastleaf.data.synth import CLASS_NAMES, make_synthetic

NC, TRAIN, TEST, SIZE = 5, 6, 2, 96            # small images keep the whole file fast


def read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_synthetic(tmp_path_factory.mktemp("synth") / "leaves", num_classes=NC,
                          train_per_class=TRAIN, test_per_class=TEST, size=SIZE, seed=3)


def test_class_names():
    assert len(CLASS_NAMES) == 176 == len(set(CLASS_NAMES))
    assert all(re.fullmatch(r"[a-z]+_[a-z]+", n) for n in CLASS_NAMES)
    assert {"acer_rubrum", "quercus_alba", "maclura_pomifera"} <= set(CLASS_NAMES)


def test_layout_headers_and_counts(data):
    assert isinstance(data, Path)
    assert {p.name for p in data.iterdir()} == {"images", "train.csv", "test.csv",
                                                "sample_submission.csv", "README.md"}
    assert "synthetic" in (data / "README.md").read_text().lower()
    assert "fastleaf synth" in (data / "README.md").read_text()

    header, train = read_csv(data / "train.csv")
    assert header == ["image", "label"] and len(train) == NC * TRAIN
    # Kaggle numbering: train images 0..N-1 in row order, test images continue at N.
    assert [r[0] for r in train] == [f"images/{i}.jpg" for i in range(NC * TRAIN)]
    header, test = read_csv(data / "test.csv")
    n = NC * TRAIN
    assert header == ["image"] and [r[0] for r in test] == [
        f"images/{n + i}.jpg" for i in range(NC * TEST)]
    header, sub = read_csv(data / "sample_submission.csv")
    assert header == ["image", "label"]
    assert sub == [[r[0], CLASS_NAMES[0]] for r in test]
    assert len(list((data / "images").iterdir())) == NC * (TRAIN + TEST)


def test_labels(data):
    labels = [r[1] for r in read_csv(data / "train.csv")[1]]
    assert set(labels) == set(CLASS_NAMES[:NC])
    assert all(labels.count(c) == TRAIN for c in CLASS_NAMES[:NC])
    assert labels != sorted(labels)                          # rows interleave classes
    assert max(len(list(g)) for _, g in itertools.groupby(labels)) < TRAIN


def test_images_are_rgb_jpegs_of_the_right_size(data):
    for path in (data / "images").iterdir():
        with Image.open(path) as img:
            assert (img.format, img.mode, img.size) == ("JPEG", "RGB", (SIZE, SIZE)), path


def test_default_size_is_224(tmp_path):
    out = make_synthetic(tmp_path / "d", num_classes=2, train_per_class=1, test_per_class=0)
    with Image.open(out / "images" / "0.jpg") as img:
        assert img.size == (224, 224)
    assert read_csv(out / "test.csv") == (["image"], [])


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def test_deterministic(tmp_path):
    kw = dict(num_classes=3, train_per_class=3, test_per_class=1, size=64)
    a = _files(make_synthetic(tmp_path / "a", seed=7, **kw))
    b = _files(make_synthetic(tmp_path / "b", seed=7, **kw))
    c = _files(make_synthetic(tmp_path / "c", seed=8, **kw))
    assert a == b
    assert a.keys() == c.keys()
    assert all(a[k] != c[k] for k in a if k.startswith("images"))


def test_classes_differ_more_than_samples_within_a_class(data):
    rows = read_csv(data / "train.csv")[1]
    means = np.array([np.asarray(Image.open(data / img), dtype=np.float64).mean((0, 1))
                      for img, _ in rows])
    labels = np.array([lab for _, lab in rows])
    dist = np.linalg.norm(means[:, None] - means[None], axis=-1)
    same = labels[:, None] == labels[None]
    off_diag = ~np.eye(len(labels), dtype=bool)
    within, between = dist[same & off_diag].mean(), dist[~same].mean()
    assert between > 1.5 * within, (within, between)   # measured 1.9-2.9


@pytest.mark.parametrize("n", [1, 177, 0, -3])
def test_bad_num_classes(tmp_path, n):
    with pytest.raises(ValueError, match="num_classes"):
        make_synthetic(tmp_path / "x", num_classes=n)
    assert not (tmp_path / "x").exists()


def test_refuses_foreign_non_empty_folder(tmp_path):
    (tmp_path / "mine.txt").write_text("precious")
    with pytest.raises(FileExistsError, match=re.escape(str(tmp_path))):
        make_synthetic(tmp_path, num_classes=2, train_per_class=1, size=32)
    assert [p.name for p in tmp_path.iterdir()] == ["mine.txt"]
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    with pytest.raises(FileExistsError):
        make_synthetic(not_a_dir, num_classes=2, train_per_class=1, size=32)


def test_overwrites_previous_output_and_drops_stale_images(tmp_path):
    make_synthetic(tmp_path / "d", num_classes=4, train_per_class=3, size=32)
    out = make_synthetic(tmp_path / "d", num_classes=2, train_per_class=2, test_per_class=1,
                         size=32)
    assert len(list((out / "images").iterdir())) == 6
    assert {r[1] for r in read_csv(out / "train.csv")[1]} == set(CLASS_NAMES[:2])
