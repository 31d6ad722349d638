"""``summarize_data`` counts match the CSVs; duplicates and unreadable files are reported."""
import csv
import shutil
from collections import Counter

import pytest

from fastleaf.cli import main
from fastleaf.data.summary import summarize_data


def read_csv(path):
    return list(csv.DictReader(open(path)))


def test_counts_match_the_csvs(tiny_data):
    train, test = read_csv(tiny_data / "train.csv"), read_csv(tiny_data / "test.csv")
    info = summarize_data(tiny_data, top=3)
    labels = Counter(r["label"] for r in train)
    assert info["train_rows"] == len(train) == 72 and info["test_rows"] == len(test) == 18
    assert info["classes"] == len(labels) == 6
    assert info["class_counts"] == dict(labels)
    assert list(info["class_counts"].values()) == sorted(labels.values(), reverse=True)
    assert len(info["head"]) == len(info["tail"]) == 3
    assert info["per_class"] == {"min": 12, "median": 12.0, "mean": 12.0, "max": 12}
    assert info["images_checked"] == 90
    assert info["sizes"] == {"128x128": 90} and info["modes"] == {"RGB": 90}
    assert info["duplicate_rows"] == [] and info["unreadable"] == []


def test_duplicates_and_unreadable_files(tiny_data, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    train = read_csv(data / "train.csv")
    shutil.copy(data / train[0]["image"], data / "images" / "copy.jpg")
    (data / "images" / "bad.jpg").write_bytes(b"not an image")
    extra = [train[5], {"image": "images/copy.jpg", "label": train[0]["label"]},
             {"image": "images/bad.jpg", "label": train[0]["label"]}]
    with open(data / "train.csv", "a", newline="") as f:
        csv.DictWriter(f, ["image", "label"]).writerows(extra)
    info = summarize_data(data)
    assert info["train_rows"] == 75
    assert info["duplicate_rows"] == [{"image": train[5]["image"],
                                       "rows": ["train.csv row 7", "train.csv row 74"]}]
    groups = [sorted(g) for g in info["duplicate_files"]]
    assert sorted(["images/copy.jpg", train[0]["image"]]) in groups
    assert [(u["image"], u["where"]) for u in info["unreadable"]] == [
        ("images/bad.jpg", "train.csv row 76")]


def test_sample_limits_the_images_opened(tiny_data):
    info = summarize_data(tiny_data, sample=10, seed=3)
    assert info["images_checked"] == 10 == sum(info["sizes"].values())
    assert info["train_rows"] == 72                     # counts still cover every row


def test_cli_prints_tables(tiny_data, capsys):
    assert main(["data-summary", "--data", str(tiny_data), "--sample", "5"]) == 0
    out = capsys.readouterr().out
    assert "train rows" in out and "128x128" in out and "tail: fewest images" in out
    assert main(["data-summary", "--data", str(tiny_data / "missing")]) == 2


def test_shared_data_counts(shared_data):
    info = summarize_data(shared_data, sample=50)
    assert (info["train_rows"], info["test_rows"], info["classes"]) == (1745, 427, 176)
    assert sum(info["class_counts"].values()) == 1745
    assert 6 <= info["per_class"]["min"] <= info["per_class"]["max"] <= 19
