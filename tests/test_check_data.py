"""fastleaf check-data: each kind of bad input is one finding naming the file, line and image."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from fastleaf.cli import main
from fastleaf.data.check import check_data, edit_distance
from fastleaf.data.table import DataError


@pytest.fixture
def data(tiny_data, tmp_path) -> Path:
    """A private copy of the tiny synthetic set (train row i is images/i.jpg), to damage."""
    return Path(shutil.copytree(tiny_data, tmp_path / "data"))


def edit_csv(path: Path, row: int, **values) -> None:
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    for column, value in values.items():
        frame.loc[row, column] = value
    frame.to_csv(path, index=False)


def only(report, kind: str, severity: str, line: int | None, csv: str = "train.csv"):
    """The single finding of ``kind``; its message names the CSV file, the line and the image."""
    found = [f for f in report.findings if f.kind == kind]
    assert len(found) == 1, [f.message for f in report.findings]
    f = found[0]
    assert f.severity == severity and f.line == line and f.csv.name == csv
    assert csv in f.message
    if line is not None:
        assert f"line {line}" in f.message and repr(f.image) in f.message
    return f


def test_clean_set_is_ok(data):
    report = check_data(data)
    assert report.ok and report.errors() == [] and report.warnings() == []
    assert report.rows_checked == 6 * 12 + 6 * 3 and report.images_checked == report.rows_checked


def test_missing_data_folder_raises(tmp_path):
    with pytest.raises(DataError, match="not found"):
        check_data(tmp_path / "nope")


def test_missing_and_empty_image_files(data):
    (data / "images" / "3.jpg").unlink()
    (data / "images" / "4.jpg").write_bytes(b"")
    report = check_data(data)
    assert "images/3.jpg" in only(report, "missing_file", "error", 5).message
    only(report, "empty_file", "error", 6)
    assert report.bad_rows(data / "train.csv") == {3, 4}


@pytest.mark.parametrize("decode", [True, False])
def test_truncated_jpeg(data, decode):
    path = data / "images" / "7.jpg"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    f = only(check_data(data, decode=decode), "corrupt", "error", 9)
    assert "truncated" in f.message


def test_non_jpeg_behind_jpg_name(data):
    Image.open(data / "images" / "2.jpg").save(data / "images" / "2.jpg", format="PNG")
    (data / "images" / "5.jpg").write_bytes(b"GIF? no, just some text " * 20)
    report = check_data(data)
    assert "PNG" in only(report, "not_jpeg", "warning", 4).message
    only(report, "not_image", "error", 7)
    assert report.bad_rows(data / "train.csv") == {5}


@pytest.mark.parametrize("mode,fmt", [("L", "JPEG"), ("RGBA", "PNG"), ("CMYK", "JPEG"),
                                      ("P", "PNG")])
def test_non_rgb_modes_are_converted(data, mode, fmt):
    path = data / "images" / "1.jpg"
    Image.open(path).convert(mode).save(path, format=fmt)
    report = check_data(data)
    assert report.ok
    assert f"mode {mode}" in only(report, "converted_mode", "warning", 3).message


def test_unexpected_size_is_resized(data):
    path = data / "images" / "0.jpg"
    Image.open(path).resize((100, 80)).save(path)
    report = check_data(data)               # expected size: the most common one (128)
    assert "100x80" in only(report, "resized", "warning", 2).message
    assert len(check_data(data, image_size=100).warnings()) == report.rows_checked


def test_empty_csv_and_bad_header(data):
    (data / "test.csv").write_text("")
    (data / "train.csv").write_text("file,class\nimages/0.jpg,acer_campestre\n")
    report = check_data(data)
    assert "label" in only(report, "bad_header", "error", None).message
    only(report, "empty_csv", "error", None, csv="test.csv")
    (data / "train.csv").unlink()
    only(check_data(data), "missing_csv", "error", None)


def test_unknown_label_from_class_list(data):
    frame = pd.read_csv(data / "train.csv")
    classes = sorted(set(frame.label))
    edit_csv(data / "train.csv", 8, label="quercus_rubra")
    f = only(check_data(data, classes=classes), "unknown_label", "error", 10)
    assert "quercus_rubra" in f.message and "6 classes" in f.message
    (data / "classes.json").write_text(json.dumps(classes))      # the folder's own list
    assert only(check_data(data), "unknown_label", "error", 10).row == 8


def test_label_typo_and_style_without_class_list(data):
    label = pd.read_csv(data / "train.csv").label[4]
    edit_csv(data / "train.csv", 4, label=label[:-1] + "x")
    edit_csv(data / "train.csv", 6, label="")
    report = check_data(data)
    assert f"typo of {label!r}" in only(report, "unknown_label", "error", 6).message
    only(report, "empty_label", "error", 8)
    for row in (10, 11):
        edit_csv(data / "train.csv", row, label="Odd Label")
    assert "'Odd Label'" in only(check_data(data), "label_style", "warning", 12).message


def test_duplicate_rows_and_conflicting_labels(data):
    labels = pd.read_csv(data / "train.csv").label
    same = next(i for i in range(2, len(labels)) if labels[i] == labels[0])
    other = next(i for i in range(2, len(labels)) if labels[i] != labels[1] and i != same)
    edit_csv(data / "train.csv", same, image="images/0.jpg")          # same label twice
    edit_csv(data / "train.csv", other, image="./images/1.jpg")       # different label
    report = check_data(data)
    assert "line 2" in only(report, "duplicate_row", "warning", same + 2).message
    conflicts = [f for f in report.findings if f.kind == "conflicting_labels"]
    assert {f.line for f in conflicts} == {3, other + 2}
    assert all(f.severity == "error" for f in conflicts)


def test_path_escape_is_refused_unopened(data):
    (data.parent / "secret.jpg").write_bytes((data / "images" / "0.jpg").read_bytes())
    edit_csv(data / "train.csv", 2, image="../secret.jpg")
    edit_csv(data / "train.csv", 3, image=str(data / "images" / "3.jpg"))
    report = check_data(data)
    escapes = [f for f in report.findings if f.kind == "path_escape"]
    assert [(f.line, f.severity) for f in escapes] == [(4, "error"), (5, "error")]
    assert "'../secret.jpg'" in escapes[0].message
    assert len(report.findings) == 2          # never opened: no image findings for them


def test_test_images_in_train(data):
    test = pd.read_csv(data / "test.csv")
    edit_csv(data / "test.csv", 0, image="images/5.jpg")                      # same path
    shutil.copy(data / "images" / "6.jpg", data / test.image[1])             # same bytes
    report = check_data(data)
    found = [f for f in report.findings if f.kind == "test_in_train"]
    assert [(f.csv.name, f.line, f.severity) for f in found] == [("test.csv", 2, "warning"),
                                                                  ("test.csv", 3, "warning")]
    assert "train.csv line 7" in found[0].message and "same bytes" in found[1].message


def test_write_csv(data, tmp_path):
    (data / "images" / "3.jpg").unlink()
    out = check_data(data).write_csv(tmp_path / "out" / "bad_rows.csv")
    frame = pd.read_csv(out)
    assert frame.to_dict("records")[0] | {"message": ""} == {
        "severity": "error", "kind": "missing_file", "csv": str(data / "train.csv"), "line": 5,
        "image": "images/3.jpg", "message": ""}


def test_edit_distance():
    assert edit_distance("acer_rubrum", "acer_rubrum") == 0
    assert edit_distance("acer_rubrun", "acer_rubrum") == 1
    assert edit_distance("acer", "acre") == 2


def test_cli_exits_nonzero_naming_each_bad_row(data, tmp_path, capsys):
    assert main(["check-data", "--data", str(data)]) == 0
    path = data / "images" / "3.jpg"
    path.write_bytes(path.read_bytes()[:400])
    edit_csv(data / "train.csv", 9, image="../secret.jpg")
    label = pd.read_csv(data / "train.csv").label[20]
    edit_csv(data / "train.csv", 20, label=label.upper() + "S")
    capsys.readouterr()
    out_csv = tmp_path / "findings.csv"
    assert main(["check-data", "--data", str(data), "--out", str(out_csv)]) == 1
    text = capsys.readouterr().out
    for where in ("train.csv:5", "train.csv:11", "train.csv:22"):
        assert where in text
    assert "3 errors" in text
    assert set(pd.read_csv(out_csv).line) == {5, 11, 22}
