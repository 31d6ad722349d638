"""Near-duplicates: planted resized and re-encoded copies are found, folds keep groups whole."""
from __future__ import annotations

import argparse
import shutil

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from fastleaf.commands import check_data as check_command
from fastleaf.data.dedup import near_pairs, popcount
from fastleaf.data.near_duplicates import find_near_duplicates
from fastleaf.data.table import fold_indices, load_table


@pytest.fixture()
def planted(tiny_data, tmp_path):
    """tiny_data plus: a resized copy of train image 0 (another label: a conflict), a JPEG
    re-encoded copy of train image 5 (same label) and a test row that is train image 7."""
    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    train = pd.read_csv(data / "train.csv", dtype=str)
    src = {i: data / train.image[i] for i in (0, 5, 7)}
    Image.open(src[0]).resize((96, 96), Image.BICUBIC).save(data / "images" / "resized.jpg",
                                                            quality=95)
    Image.open(src[5]).save(data / "images" / "reencoded.jpg", quality=40)
    Image.open(src[7]).save(data / "images" / "testcopy.png")
    other = next(label for label in train.label if label != train.label[0])
    extra = pd.DataFrame({"image": ["images/resized.jpg", "images/reencoded.jpg"],
                          "label": [other, train.label[5]]})
    pd.concat([train, extra]).to_csv(data / "train.csv", index=False)
    test = pd.read_csv(data / "test.csv", dtype=str)
    pd.concat([test, pd.DataFrame({"image": ["images/testcopy.png"]})]).to_csv(
        data / "test.csv", index=False)
    return data, train


def test_planted_copies_are_found_and_nothing_else(planted):
    data, train = planted
    found = find_near_duplicates(data).frame
    pairs = {(r.kind, r.a_image, r.b_image) for r in found.itertuples()}
    n = len(train)
    assert pairs == {("conflicting_labels", train.image[0], "images/resized.jpg"),
                     ("train_copy", train.image[5], "images/reencoded.jpg"),
                     ("test_copy_of_train", train.image[7], "images/testcopy.png")}
    resized = found[found.b_image == "images/resized.jpg"].iloc[0]
    assert resized.a_line == 2 and resized.b_line == n + 2      # CSV lines, header = line 1
    test_pair = found[found.kind == "test_copy_of_train"].iloc[0]
    assert test_pair.b_csv == "test.csv" and test_pair.a_label == train.label[7]


def test_check_data_command_reports_pairs(planted, tmp_path, capsys):
    data, _ = planted
    parser = argparse.ArgumentParser()
    check_command.add_arguments(parser)
    out = tmp_path / "pairs.csv"
    args = parser.parse_args(["--data", str(data), "--near-duplicates", "--no-decode",
                              "--pairs-out", str(out)])
    check_command.run(args)
    text = capsys.readouterr().out
    assert "1 conflicting_labels, 1 train_copy, 1 test_copy_of_train, 0 test_copy" in text
    assert len(pd.read_csv(out)) == 3


def test_popcount_and_pairs_by_hand():
    words = np.array([[0b1011, 0], [0, 2**63]], dtype=np.uint64)
    assert popcount(words).tolist() == [[3, 0], [0, 1]]
    hashes = np.array([[0b0], [0b111], [0b1]], dtype=np.uint64)
    assert near_pairs(hashes, max_distance=1).tolist() == [[0, 2, 1]]
    assert near_pairs(hashes, max_distance=3).tolist() == [[0, 1, 3], [0, 2, 1], [1, 2, 2]]


def test_grouped_folds_keep_groups_together_and_cover_every_row():
    labels = np.repeat(np.arange(4), 10)
    groups = np.arange(40)
    groups[[1, 2, 3]] = 1             # a group of three copies
    groups[[12, 25]] = 12             # copies across classes
    vals = []
    for fold in range(3):
        train, val = fold_indices(labels, fold, 3, seed=0, groups=groups)
        assert not set(groups[train]) & set(groups[val])
        vals.append(val)
    assert sorted(np.concatenate(vals).tolist()) == list(range(40))
    # without any group of two, the folds are the plain stratified ones
    plain = fold_indices(labels, 1, 3, seed=0)
    assert all(np.array_equal(a, b) for a, b in
               zip(plain, fold_indices(labels, 1, 3, seed=0, groups=np.arange(40))))


def test_table_folds_put_planted_copies_in_one_fold(planted):
    data, train = planted
    n = len(train)
    for fold in range(3):
        table = load_table(data, fold=fold, folds=3, seed=0, group_near_duplicates=True)
        val = set(table.val.rows.tolist())
        for a, b in ((0, n), (5, n + 1)):
            assert (a in val) == (b in val), (fold, a, b)
