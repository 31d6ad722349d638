"""Any CSV (``--csv FILE --image-col NAME --label-col NAME [--images-root DIR]``) works with
every command that reads a data set, and a CSV without a named column is one line."""
from __future__ import annotations

import csv
import shutil

import numpy as np
import pytest
import yaml

from fastleaf.cli import main
from fastleaf.config import TrainConfig, resolve_config
from fastleaf.data.csv_source import layout_kind
from fastleaf.sources import CsvSource
from fastleaf.data.table import DataError, data_files, load_table
from fastleaf.predict.submission import write_predictions

# label texts a spreadsheet holds: spaces, capitals, digits with and without a leading zero,
# a comma and quotes, pandas' missing-value words, accents
ODD = ["Acer rubrum", "007", "7", 'a,b "q"', "NA", "érable"]


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTLEAF_CACHE", str(tmp_path / "cache"))


def read_rows(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def csv_set(tiny_data, base, test_rows=True):
    """The tiny set as ``base/photos/<n>.jpg`` and ``base/meta/labels.csv`` with columns
    ``notes,file,species`` (odd label texts); its test images as rows without a species."""
    photos, meta = base / "photos", base / "meta"
    (photos / "sub").mkdir(parents=True)
    meta.mkdir()
    names = {}
    rows = []
    for i, row in enumerate(read_rows(tiny_data / "train.csv")):
        if row["label"] not in names:
            names[row["label"]] = ODD[len(names)]
        label = names[row["label"]]
        shutil.copy(tiny_data / row["image"], photos / "sub" / f"{i}.jpg")
        rows.append({"notes": "x", "file": f"sub/{i}.jpg", "species": label})
    for i, row in enumerate(read_rows(tiny_data / "test.csv")):
        shutil.copy(tiny_data / row["image"], photos / f"t{i}.jpg")
        if test_rows:
            rows.append({"notes": "", "file": f"t{i}.jpg", "species": ""})
    with open(meta / "labels.csv", "w", newline="", encoding="utf-8-sig") as f:
        writer = csv.DictWriter(f, ["notes", "file", "species"])
        writer.writeheader()
        writer.writerows(rows)
    return meta / "labels.csv", photos


def source_of(labels, photos, **kwargs):
    return CsvSource.create(labels, "file", "species", photos, **kwargs)


def test_a_csv_reads_as_one_table_with_its_test_rows(tiny_data, tmp_path, capsys):
    labels, photos = csv_set(tiny_data, tmp_path)
    before = sorted(p for p in tmp_path.rglob("*") if "cache" not in p.parts)
    table = load_table(source_of(labels, photos), val_fraction=0.25, seed=0)
    assert table.classes == sorted(ODD)           # texts, "007" and "7" two classes, "NA" kept
    assert len(table.all_train) == 72 and len(table.val) == 18 and len(table.test) == 18
    assert all(p.is_file() and photos in p.parents for p in table.all_train.paths)
    assert table.test.images[0] == "t0.jpg"
    out = capsys.readouterr().out
    assert ("read as a CSV (images 'file' under " in out
            and "72 labelled rows of 6 classes, 18 rows without a label as the test set" in out)
    # the user's folders are read, never written; the CSV is one of the data set's files
    assert sorted(p for p in tmp_path.rglob("*") if "cache" not in p.parts) == before
    assert labels in data_files(source_of(labels, photos))


def test_images_root_defaults_to_the_csvs_folder_and_a_test_csv_names_the_test_rows(
        tiny_data, tmp_path):
    labels, photos = csv_set(tiny_data, tmp_path, test_rows=False)
    moved = shutil.copy(labels, photos / "labels.csv")        # beside the images
    table = load_table(CsvSource.create(moved, "file", "species"))
    assert table.test is None and table.layout.image_root == photos
    test_csv = tmp_path / "meta" / "to_predict.csv"
    test_csv.write_text("file\n" + "".join(f"t{i}.jpg\n" for i in range(5)))
    table = load_table(source_of(labels, photos, test_csv=test_csv))
    assert table.test.images == [f"t{i}.jpg" for i in range(5)]
    with_blank = tmp_path / "meta" / "blank.csv"
    with_blank.write_text("file,species\nsub/0.jpg,a\nsub/1.jpg,\n")
    with pytest.raises(DataError, match=r"blank.csv row 3: empty 'species' \(the test rows"):
        load_table(source_of(with_blank, photos, test_csv=test_csv))


@pytest.mark.parametrize("command", ["check-data", "data-summary", "train", "tta-predict"])
def test_a_missing_column_is_one_line_naming_it_and_the_columns_there(tiny_data, tmp_path,
                                                                      capsys, command):
    labels, photos = csv_set(tiny_data, tmp_path)
    extra = {"train": ["--epochs", "1", "--device", "cpu", "--out", str(tmp_path / "run")],
             "tta-predict": ["--checkpoint", str(tmp_path / "none.pt")]}.get(command, [])
    code = main([command, "--csv", str(labels), "--image-col", "file", "--label-col", "label",
                 "--images-root", str(photos), *extra])
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("error:")]
    assert code == 2 and len(lines) == 1
    assert (f"{labels}: no column 'label' (--label-col); its columns are 'notes', 'file', "
            f"'species'") in lines[0]
    assert not (tmp_path / "run").exists()


def test_paths_escaping_the_images_root_are_refused(tiny_data, tmp_path, capsys):
    labels, photos = csv_set(tiny_data, tmp_path)
    outside = tmp_path / "outside.jpg"
    shutil.copy(photos / "t0.jpg", outside)
    text = labels.read_text(encoding="utf-8-sig").splitlines()
    for escape in ("../outside.jpg", str(outside)):
        bad = tmp_path / "meta" / "bad.csv"
        bad.write_text("\n".join(text[:3] + [f"x,{escape},Acer rubrum"] + text[3:]) + "\n")
        source = source_of(bad, photos)
        with pytest.raises(DataError, match=f"row 4: image path '{escape}' escapes the data"):
            load_table(source)
        assert main(["check-data", "--csv", str(bad), "--image-col", "file", "--label-col",
                     "species", "--images-root", str(photos), "--no-decode"]) == 1
        assert "path_escape" in capsys.readouterr().out


def test_data_and_csv_flags_are_one_data_set(tiny_data, tmp_path, capsys):
    labels, photos = csv_set(tiny_data, tmp_path)
    assert main(["check-data", "--data", str(tiny_data), "--csv", str(labels)]) == 2
    assert "name two data sets; give one" in capsys.readouterr().out
    assert main(["check-data", "--data", str(tiny_data), "--label-col", "species"]) == 2
    assert "--label-col describes a CSV: give it with --csv FILE" in capsys.readouterr().out
    assert main(["train", "--data", str(labels)]) == 2
    assert "a file; a CSV is read with --csv FILE" in capsys.readouterr().out


def test_the_source_is_recorded_in_the_config_and_read_back(tiny_data, tmp_path):
    labels, photos = csv_set(tiny_data, tmp_path)
    cfg = resolve_config(data=source_of(labels, photos), epochs=1)
    saved = yaml.safe_load(yaml.safe_dump(cfg.to_dict()))
    assert saved["data"] == {"csv": str(labels), "image_col": "file", "label_col": "species",
                             "images_root": str(photos), "test_csv": None}
    assert TrainConfig.from_dict(saved).data == cfg.data
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({"data": {"csv": str(labels), "image_col": "file",
                                               "label_col": "species"}}))
    assert resolve_config(recipe).data.root == labels.parent
    recipe.write_text("data: {csv: labels.csv, image: file}\n")
    with pytest.raises(Exception, match=r"unknown key\(s\) \['image'\]"):
        resolve_config(recipe)


@pytest.mark.parametrize("kind", ["kaggle", "folders", "csv"])
def test_test_predictions_are_a_submission_only_for_the_kaggle_layout(tiny_data, tmp_path,
                                                                      kind):
    data = {"kaggle": tiny_data, "csv": source_of(*csv_set(tiny_data, tmp_path))}.get(kind)
    if kind == "folders":
        data = tmp_path / "tree"
        for name in ("a", "b"):
            (data / "train" / name).mkdir(parents=True)
    assert layout_kind(data) == kind
    probs = np.array([[0.1, 0.9], [0.7, 0.3]])
    path, columns = write_predictions(tmp_path / "out.csv", data, ["x.jpg", "y.jpg"], probs,
                                      ["a", "b"])
    rows = read_rows(path)
    if kind == "kaggle":
        assert columns == ("image", "label") and rows[1] == {"image": "y.jpg", "label": "a"}
    else:
        assert rows == [{"image": "x.jpg", "label": "b", "probability": "0.900000"},
                        {"image": "y.jpg", "label": "a", "probability": "0.700000"}]


@pytest.mark.slow
def test_train_resume_kfold_evaluate_and_predict_on_a_csv(tiny_data, tmp_path, capsys):
    labels, photos = csv_set(tiny_data, tmp_path)
    data = ["--csv", str(labels), "--image-col", "file", "--label-col", "species",
            "--images-root", str(photos)]
    common = ["--model", "cnn", "--img-size", "112", "-b", "16", "-j", "0", "--device", "cpu",
              "--no-amp", "--no-progress", "--no-tensorboard", "--epochs", "1"]
    assert main(["check-data", *data, "--img-size", "128", "--near-duplicates"]) == 0
    run = tmp_path / "run"
    assert main(["train", *data, "--out", str(run), *common]) == 0
    recorded = yaml.safe_load((run / "config.yaml").read_text())["data"]
    assert recorded["csv"] == str(labels) and recorded["label_col"] == "species"
    assert main(["train", "--resume", str(run), "--epochs", "2"]) == 0
    assert len(read_rows(run / "metrics.csv")) == 2
    assert main(["train", *data, "--folds", "2", "--out", str(tmp_path / "kf"), *common]) == 0
    oof = read_rows(tmp_path / "kf" / "oof.csv")
    assert len(oof) == 72 and {row["label"] for row in oof} == set(ODD)
    capsys.readouterr()
    # the run finds its CSV again from its config; a labelled CSV scores with its own columns
    assert main(["evaluate", "--checkpoint", str(run), "--tta", "none", "--device", "cpu"]) == 0
    assert "validation split (12 rows)" in capsys.readouterr().out
    assert main(["evaluate", "--checkpoint", str(run), "--csv", str(labels), "--image-col",
                 "file", "--label-col", "species", "--tta", "none", "--device", "cpu"]) == 2
    assert "row 74: empty 'species'" in capsys.readouterr().out      # its test rows
    out = tmp_path / "predictions.csv"
    assert main(["tta-predict", *data, "--checkpoint", str(tmp_path / "kf"), "--tta", "none",
                 "--device", "cpu", "--out", str(out)]) == 0
    rows = read_rows(out)
    assert [row["image"] for row in rows] == [f"t{i}.jpg" for i in range(18)]
    assert set(rows[0]) == {"image", "label", "probability"}
    assert all(row["label"] in ODD and 0 < float(row["probability"]) <= 1 for row in rows)
    assert main(["tta-predict", *data, "--checkpoint", str(run), "--device", "cpu",
                 "--out", str(labels)]) == 2                   # never over the user's CSV
    assert "this is an input" in capsys.readouterr().out
    assert main(["predict", str(photos / "sub"), "--checkpoint", str(run), "--device", "cpu",
                 "--out", str(tmp_path / "photos.csv")]) == 0
    assert len(read_rows(tmp_path / "photos.csv")) == 72


def test_no_test_rows_is_one_line_saying_where_they_go(tiny_data, tmp_path, capsys):
    labels, photos = csv_set(tiny_data, tmp_path, test_rows=False)
    assert main(["tta-predict", "--csv", str(labels), "--image-col", "file", "--label-col",
                 "species", "--images-root", str(photos), "--checkpoint", "x.pt"]) == 2
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "no test images; give --test-csv FILE, or leave the 'species'" \
        in lines[0]
    assert main(["check-data", "--csv", str(tmp_path / "none.csv")]) == 2
    assert "--csv " + str(tmp_path / "none.csv") + ": file not found" in capsys.readouterr().out
