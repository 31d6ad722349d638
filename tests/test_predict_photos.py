"""fastleaf predict: one photo -> top-k table, a folder -> CSV, any size or mode of image."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from fastleaf.cli import main
from fastleaf.data.table import DataError
from fastleaf.predict.ensemble import PredictSettings, ensemble_probs, load_members
from fastleaf.predict.photos import find_photos, predict_photos
from fastleaf.predict.runner import read_test_samples

# the first test to ask for it trains the shared run (conftest.tiny_run)
pytestmark = pytest.mark.slow

FAST = PredictSettings(tta="none", batch_size=16, device="cpu", workers=0)


def test_a_photo_gets_the_probabilities_its_test_row_gets(tiny_data, tiny_run):
    # same decode, resize and normalisation as the loader seam used for test.csv
    samples = read_test_samples(tiny_data)
    expected = ensemble_probs(load_members([tiny_run]), samples, FAST)["none"].probs
    result = predict_photos(samples.paths[2], [tiny_run], top=3, settings=FAST)
    assert torch.allclose(result.probs[0], expected[2], atol=1e-5)
    top = result.top[0]
    assert len(top) == 3 and [p for _, p in top] == sorted((p for _, p in top), reverse=True)
    assert top[0][0] == result.classes[int(expected[2].argmax())]


@pytest.mark.parametrize("mode, size", [("L", (300, 200)), ("RGBA", (64, 80)),
                                        ("CMYK", (130, 130))])
def test_any_size_or_mode_of_photo(tiny_run, tmp_path, mode, size):
    path = tmp_path / ("leaf.png" if mode != "CMYK" else "leaf.jpg")
    pixels = np.random.default_rng(0).integers(0, 255, (*size[::-1], len(mode)), dtype=np.uint8)
    Image.fromarray(pixels.squeeze(), mode).save(path)
    result = predict_photos(path, [tiny_run], top=5, settings=FAST)
    assert result.probs.shape == (1, 6)
    assert sum(p for _, p in result.top[0]) <= 1.0 + 1e-6


def test_the_cli_prints_the_top_species_table(tiny_data, tiny_run, capsys):
    photo = tiny_data / "images" / sorted(p.name for p in (tiny_data / "images").iterdir())[0]
    code = main(["predict", str(photo), "--checkpoint", str(tiny_run), "--top", "4",
                 "--device", "cpu", "--workers", "0"])
    assert code == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if "│" in line]
    cells = [[cell.strip() for cell in line.split("│")[1:-1]] for line in lines]
    rows = [r for r in cells if r and r[0].isdigit()]
    assert [r[0] for r in rows] == ["1", "2", "3", "4"]
    probs = [float(r[2]) for r in rows]
    assert probs == sorted(probs, reverse=True) and sum(probs) <= 1.0 + 1e-3


def test_a_folder_gets_a_csv_row_per_photo(tiny_data, tiny_run, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    names = ["leaf10.jpg", "leaf2.jpg", "leaf1.PNG"]
    for name, src in zip(names, sorted((tiny_data / "images").iterdir())):
        Image.open(src).save(folder / name)
    (folder / "notes.txt").write_text("not a photo")
    out = tmp_path / "pred.csv"
    assert main(["predict", str(folder), "--checkpoint", str(tiny_run), "--out", str(out),
                 "--tta", "hflip", "--device", "cpu", "--workers", "0"]) == 0
    table = pd.read_csv(out)
    assert list(table.columns) == ["image", "label", "probability"]
    assert table["image"].tolist() == ["leaf1.PNG", "leaf2.jpg", "leaf10.jpg"]   # natural order
    classes = load_members([tiny_run])[0].classes
    assert set(table["label"]) <= set(classes)
    assert ((table["probability"] > 0) & (table["probability"] <= 1)).all()


def test_bad_targets_are_named(tmp_path, tiny_run):
    with pytest.raises(DataError, match="no such image"):
        find_photos(tmp_path / "missing.jpg")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no photos"):
        find_photos(tmp_path / "empty")
    with pytest.raises(ValueError, match="--top"):
        predict_photos(tmp_path, [tiny_run], top=0)


def test_the_csv_never_replaces_a_photo(tiny_data, tiny_run, tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    src = sorted((tiny_data / "images").iterdir())[0]
    (folder / "a.jpg").write_bytes(src.read_bytes())
    before = (folder / "a.jpg").read_bytes()
    code = main(["predict", str(folder), "--checkpoint", str(tiny_run), "--out",
                 str(folder / "a.jpg"), "--device", "cpu", "--workers", "0"])
    assert code == 2 and "is an input" in capsys.readouterr().out
    assert (folder / "a.jpg").read_bytes() == before
