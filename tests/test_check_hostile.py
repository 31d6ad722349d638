"""The data check against hostile input: symlinks out of the folder, decompression bombs,
misjudged JPEGs, odd rows; and output a script can read."""
from __future__ import annotations

import io
import os
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from fastleaf.cli import main
from fastleaf.data.check import check_data
from fastleaf.data.imageio import ImageDecodeError, ImageTooLarge, decode_rgb, load_image
from fastleaf.data.preflight import preflight
from fastleaf.data.table import DataError, load_table

# the damageable copy of the tiny set and the CSV editor are the data-check tests' own
from test_check_data import data, edit_csv  # noqa: F401

SECRET = b"root:x:0:0:root:/root:/bin/bash\n"


def kinds(report, kind):
    return [f for f in report.findings if f.kind == kind]


# ---------------------------------------------------------------- symlinks

def test_symlinks_out_of_the_data_folder_are_refused_unopened(data, tmp_path, capsys):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.jpg").write_bytes(SECRET)
    (data / "images" / "evil.jpg").symlink_to(outside / "secret.jpg")
    (data / "images" / "dirlink").symlink_to(outside)
    edit_csv(data / "train.csv", 2, image="images/evil.jpg")
    edit_csv(data / "train.csv", 3, image="images/dirlink/secret.jpg")
    report = check_data(data)
    escapes = kinds(report, "path_escape")
    assert [(f.line, f.severity) for f in escapes] == [(4, "error"), (5, "error")]
    assert all("symbolic link" in f.message for f in escapes)
    assert not kinds(report, "not_image")                  # never opened
    with pytest.raises(DataError, match="symbolic link"):
        load_table(data)                                    # training never reads them
    assert main(["check-data", "--data", str(data)]) == 1
    assert "root:x" not in capsys.readouterr().out


def test_a_symlink_inside_the_folder_is_fine(data):
    (data / "images" / "alias.jpg").symlink_to(data / "images" / "5.jpg")
    edit_csv(data / "train.csv", 5, image="images/alias.jpg")
    assert not kinds(check_data(data), "path_escape")


def test_a_non_image_is_reported_without_its_bytes(data):
    (data / "images" / "4.jpg").write_bytes(SECRET)
    [f] = kinds(check_data(data), "not_image")
    assert "root:x" not in f.message and "72 6f 6f 74" not in f.message


# ---------------------------------------------------------------- decompression bombs

def huge_header_jpeg(path: Path, width: int = 14000, height: int = 14000) -> None:
    """A small JPEG whose frame header claims ``width`` x ``height`` pixels."""
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), "green").save(buf, "JPEG")
    data = bytearray(buf.getvalue())
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    path.write_bytes(bytes(data))


def test_a_bomb_is_refused_by_the_check_and_every_decode(data):
    bomb = data / "images" / "6.jpg"
    huge_header_jpeg(bomb)
    [f] = kinds(check_data(data), "too_large")
    assert f.severity == "error" and "196000000 pixels" in f.message and f.line == 8
    with pytest.raises(ImageTooLarge, match="limit"):
        decode_rgb(bomb)
    with pytest.raises(ImageTooLarge):
        load_image(bomb, 64)                 # workers loader, caches and viz decode here


def test_the_pixel_limit_is_configurable_and_holds_everywhere(data, tmp_path, monkeypatch,
                                                               capsys):
    from fastleaf.data.summary import summarize_data
    from fastleaf.loaders import LoaderOptions, create_loader
    from fastleaf.data.augment import AugmentSpec

    monkeypatch.setenv("FASTLEAF_MAX_PIXELS", str(100 * 100))   # the 128 px images are over
    assert kinds(check_data(data), "too_large")
    summary = summarize_data(data)
    assert summary["unreadable"] and "limit" in summary["unreadable"][0]["error"]
    from fastleaf.loaders.dali_backend import dali_import_error

    table = load_table(data)
    # DALI decodes on its own: its loader refuses the file from the header, before the pipeline
    for backend in ("workers", "cache-ram", *(() if dali_import_error() else ("dali",))):
        with pytest.raises(ImageDecodeError, match="above the limit"):
            next(iter(create_loader(table.val, AugmentSpec.eval_preset(64),
                                    LoaderOptions(batch_size=4, workers=0), backend)))
    monkeypatch.setenv("FASTLEAF_MAX_PIXELS", "lots")
    assert main(["check-data", "--data", str(data)]) == 2
    assert "FASTLEAF_MAX_PIXELS" in capsys.readouterr().out


# ---------------------------------------------------------------- verdicts

def test_trailing_bytes_after_a_complete_jpeg_are_fine(data):
    path = data / "images" / "3.jpg"
    path.write_bytes(path.read_bytes() + b"\x00trailing junk\x00" * 400)
    report = check_data(data)
    assert report.ok, [f.message for f in report.errors()]
    assert preflight(data, skip_bad=True, quiet=True).drop == set()


def test_a_class_with_one_image_is_a_warning(data):
    edit_csv(data / "train.csv", 10, label="quercus_imaginaria")
    [f] = kinds(check_data(data), "single_image_class")
    assert f.severity == "warning" and f.line == 12 and "quercus_imaginaria" in f.message


def test_exif_orientation_is_applied_and_reported(data):
    path = data / "images" / "2.jpg"
    image = Image.open(path).resize((128, 96))
    exif = Image.Exif()
    exif[0x0112] = 6                                   # stored sideways: turn 90 degrees
    image.save(path, exif=exif.tobytes())
    report = check_data(data)
    [f] = kinds(report, "exif_rotated")
    assert f.severity == "warning" and f.line == 4
    assert tuple(decode_rgb(path).shape) == (3, 128, 96)


def test_names_with_spaces_around_them(data):
    edit_csv(data / "train.csv", 3, image=" images/3.jpg ")
    [f] = kinds(check_data(data), "spaces_in_name")
    assert f.line == 5 and "'images/3.jpg'" in f.message
    assert not kinds(check_data(data), "missing_file")


def test_bad_rows_csv_lists_only_the_dropped_rows(data, tmp_path):
    (data / "images" / "3.jpg").unlink()
    Image.open(data / "images" / "0.jpg").resize((100, 80)).save(data / "images" / "0.jpg")
    checked = preflight(data, skip_bad=True, quiet=True)
    assert checked.drop == {3}
    frame = pd.read_csv(checked.write(tmp_path / "run"))
    assert frame["line"].tolist() == [5] and frame["kind"].tolist() == ["missing_file"]


def test_duplicate_test_rows_are_reported(data):
    first = pd.read_csv(data / "test.csv", dtype=str).image[0]
    edit_csv(data / "test.csv", 2, image=first)
    [f] = kinds(check_data(data), "duplicate_row")
    assert f.csv.name == "test.csv" and f.line == 4


# ---------------------------------------------------------------- output for scripts

def test_check_output_is_one_finding_a_line_when_piped(data, capsys):
    (data / "images" / "3.jpg").unlink()
    edit_csv(data / "train.csv", 9, image="../secret.jpg")
    assert main(["check-data", "--data", str(data)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert f"error missing_file {data / 'train.csv'}:5 'images/3.jpg': image file not " \
           f"found: {data / 'images' / '3.jpg'}" in lines
    assert any(line.startswith(f"error path_escape {data / 'train.csv'}:11 '../secret.jpg': ")
               for line in lines)
    assert not any("│" in line or "┃" in line for line in lines)


def test_train_preflight_lists_one_finding_a_line_when_piped(data, tmp_path, capsys):
    (data / "images" / "3.jpg").unlink()
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "r"),
                 "--no-progress"]) == 2
    out = capsys.readouterr().out
    assert f"error missing_file {data / 'train.csv'}:5 'images/3.jpg': " in out
    assert not (tmp_path / "r").exists()
