import numpy as np
import pandas as pd
import pytest

from fastleaf.data.table import (DataError, csv_line, csv_row, encode_labels, fold_indices,
                                 load_classes, load_table, save_classes, split_indices)


def test_split_is_stratified_and_keeps_every_class_in_train():
    labels = np.repeat(np.arange(30), [1, 2, 3, 10, 50, 7] * 5)
    train, val = split_indices(labels, 0.2, seed=3)
    assert len(np.intersect1d(train, val)) == 0
    assert len(train) + len(val) == len(labels)
    assert set(labels[train]) == set(labels)        # no class lost from training
    for c in np.unique(labels):                     # each class keeps its share (rounded)
        n = (labels == c).sum()
        assert (labels[val] == c).sum() == min(round(n * 0.2), n - 1)
    again = split_indices(labels, 0.2, seed=3)
    assert np.array_equal(again[1], val)
    assert not np.array_equal(split_indices(labels, 0.2, seed=4)[1], val)


def test_folds_partition_the_data():
    labels = np.repeat(np.arange(5), 10)
    vals = [fold_indices(labels, k, 5, seed=0)[1] for k in range(5)]
    assert np.array_equal(np.sort(np.concatenate(vals)), np.arange(50))
    for val in vals:
        assert np.bincount(labels[val]).tolist() == [2] * 5


def test_label_encoding_round_trips(tmp_path):
    names = pd.Series(["quercus_alba", "acer_rubrum", "quercus_alba", "zelkova_serrata"])
    ids, classes = encode_labels(names)
    assert classes == ["acer_rubrum", "quercus_alba", "zelkova_serrata"]
    assert [classes[i] for i in ids] == names.tolist()
    save_classes(classes, tmp_path / "classes.json")
    assert load_classes(tmp_path / "classes.json") == classes


def test_load_table_kaggle_layout(tiny_data):
    table = load_table(tiny_data, val_fraction=0.25, seed=0)
    assert table.num_classes == 6
    assert len(table.train) + len(table.val) == len(table.all_train) == 72
    assert len(table.test) == 18 and not table.test.labelled
    assert all(p.is_file() for p in table.train.paths)
    assert table.val.labelled


def test_csv_line_is_the_line_an_editor_shows_for_a_row(tiny_data):
    table = load_table(tiny_data, val_fraction=0.0, seed=0).all_train
    lines = table.csv.read_text().splitlines()          # lines[0] is line 1, the header
    for i in (0, 5, len(table) - 1):
        row = int(table.rows[i])
        assert lines[csv_line(row) - 1].split(",")[0] == table.images[i]
        assert csv_row(csv_line(row)) == row


def test_paper_layout_default(tmp_path, tiny_data):
    (tmp_path / "references").mkdir()
    for name in ("train.csv", "test.csv"):
        (tmp_path / "references" / name).write_text((tiny_data / name).read_text())
    (tmp_path / "data").symlink_to(tiny_data)
    table = load_table(None, project_root=tmp_path)
    assert table.num_classes == 6 and table.train.paths[0].is_file()


def write_csv(folder, text):
    folder.mkdir(exist_ok=True)
    (folder / "train.csv").write_text(text)
    return folder


@pytest.mark.parametrize("text, match", [
    ("", "empty"),
    ("image,species\nimages/0.jpg,a\n", "missing column"),
    ("image,label\nimages/0.jpg,a\nimages/1.jpg,\n", "row 3: empty 'label'"),
    ("image,label\nimages/0.jpg,a\n../x.jpg,b\n", "row 3: image path '../x.jpg' escapes"),
])
def test_bad_csv_names_file_and_row(tmp_path, text, match):
    folder = write_csv(tmp_path / "d", text)
    with pytest.raises(DataError, match=match) as err:
        load_table(folder)
    assert "train.csv" in str(err.value)


def test_unknown_label_with_fixed_classes(tmp_path):
    folder = write_csv(tmp_path / "d", "image,label\nimages/0.jpg,a\nimages/1.jpg,zz\n")
    with pytest.raises(DataError, match="row 3: label 'zz'"):
        load_table(folder, classes=["a", "b"])
