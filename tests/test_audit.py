"""The label audit on a tiny noisy set with known flipped rows, and train --exclude/--relabel."""
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml

from fastleaf.audit import DEFAULT_METHOD, METHODS
from fastleaf.data.audit_rows import excluded_rows, relabelled_rows
from fastleaf.audit.find import (audit, flipped_scores, label_issues, load_out_of_fold,
                                 plain_disagreement, train_lines)
from fastleaf.cli import main
from fastleaf.data.table import DataError, load_table
from fastleaf.predict.oof import OutOfFold, pool, write_out_of_fold

pytest.importorskip("cleanlab")
FLIPS = 8


@pytest.fixture(scope="module")
def noisy(tiny_data, tmp_path_factory):
    """tiny_data with FLIPS labels flipped (seeded), one near-copy of train row 0 labelled
    otherwise, one test image copying train row 1; and out-of-fold probabilities of a model
    right on 85 % of the clean labels."""
    root = tmp_path_factory.mktemp("noisy") / "data"
    shutil.copytree(tiny_data, root)
    train = pd.read_csv(root / "train.csv", dtype=str)
    classes = sorted(train["label"].unique())
    true = train["label"].map(classes.index).to_numpy()
    rng = np.random.default_rng(0)
    flipped = rng.choice(len(train), FLIPS, replace=False)
    given = true.copy()
    given[flipped] = (true[flipped] + rng.integers(1, len(classes), FLIPS)) % len(classes)
    shutil.copy(root / train["image"][0], root / "images" / "twin.jpg")
    shutil.copy(root / train["image"][1], root / "images" / "test_twin.jpg")
    other = classes[(given[0] + 1) % len(classes)]
    train["label"] = [classes[g] for g in given]
    train = pd.concat([train, pd.DataFrame({"image": ["images/twin.jpg"], "label": [other]})])
    train.to_csv(root / "train.csv", index=False)
    test = pd.read_csv(root / "test.csv", dtype=str)
    pd.concat([test, pd.DataFrame({"image": ["images/test_twin.jpg"]})]).to_csv(
        root / "test.csv", index=False)
    true = np.append(true, true[0])
    # the model: sure of the true class on 85 % of the rows; on the rest it leans to a wrong
    # class and keeps some belief in the true one, as a trained model's mistakes do
    wrong = rng.random(len(true)) >= 0.85
    guess = np.where(wrong, (true + rng.integers(1, len(classes), len(true))) % len(classes),
                     true)
    logits = rng.normal(0, 0.5, (len(true), len(classes)))
    logits[np.arange(len(true)), guess] += np.where(wrong, 1.5, 3.0)
    logits[np.arange(len(true)), true] += np.where(wrong, 1.0, 0.0)
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    everything = load_table(root).all_train
    run = root.parent / "k2"
    run.mkdir()
    write_out_of_fold(run, pool(everything, probs.astype(np.float32),
                                np.arange(len(true)) % 2, classes))
    return root, run, set(flipped.tolist())


def test_the_default_rule_finds_the_flipped_rows(noisy):
    root, run, flipped = noisy
    oof = load_out_of_fold([run])
    real = len(oof.labels) - 1              # the twin row is not one of the flips
    rows, suggested, scores = label_issues(oof)
    cl = flipped_scores(rows[rows < real], flipped, real)
    plain = flipped_scores([r for r in plain_disagreement(oof) if r < real], flipped, real)
    assert cl["recall"] >= 0.75 and cl["precision"] >= 0.5, cl
    assert cl["f1"] >= plain["f1"], (cl, plain)
    assert list(scores) == sorted(scores, reverse=True)
    assert (suggested != oof.labels[rows]).all()


def oof_of(probs, labels, classes) -> OutOfFold:
    frame = pd.DataFrame({"image": [f"images/{i}.jpg" for i in range(len(labels))]})
    return OutOfFold(frame, probs.astype(np.float32), np.asarray(labels), classes, {})


@pytest.mark.parametrize("method", METHODS)
def test_a_row_predicted_as_its_label_is_never_flagged(method):
    """Unsure rows whose top class is their given label have a lower self-confidence than the
    model's confident mistakes that the confident joint counts, yet there is no other label
    to suggest: no rule flags them."""
    classes, true = ["a", "b", "c"], np.arange(90) % 3
    given = true.copy()
    given[:9] = (true[:9] + 1) % 3                            # 9 flipped labels
    probs = np.full((90, 3), 0.17)
    probs[np.arange(90), true] = 0.66                         # right, fairly sure
    mistakes, unsure = np.arange(60, 66), np.arange(80, 86)
    probs[mistakes] = 0.005                                   # sure of another class
    probs[mistakes, (true[mistakes] + 1) % 3] = 0.65
    probs[mistakes, true[mistakes]] = 0.345
    probs[unsure] = 0.33                                      # unsure, given label on top
    probs[unsure, given[unsure]] = 0.34
    rows, suggested, _ = label_issues(oof_of(probs, given, classes), method)
    assert not set(rows.tolist()) & set(unsure.tolist())
    assert (suggested != given[rows]).all()
    if method in (DEFAULT_METHOD, "low_self_confidence"):
        assert set(rows.tolist()) == set(range(9))


def test_audit_lists_conflicts_and_test_copies(noisy):
    root, run, flipped = noisy
    found = audit(root, load_out_of_fold([run]))
    conflict = found[found["reason"] == "duplicate_conflict"]
    assert len(conflict) == 1 and {conflict["image"].iloc[0], conflict["other_image"].iloc[0]} \
        == {"images/twin.jpg", pd.read_csv(root / "train.csv")["image"][0]}
    copy = found[found["reason"] == "test_copy_of_train"]
    assert copy["image"].tolist() == ["images/test_twin.jpg"]
    assert copy["suggested_label"].iloc[0] == pd.read_csv(root / "train.csv")["label"][1]
    assert found["csv"].tolist()[-1] == "test.csv"         # test copies after the training rows
    lines = found[found["reason"] == "label_issue"]["line"] - 2
    assert len(set(lines) & flipped) >= 0.75 * FLIPS


def test_cli_audit_then_exclude_and_relabel(noisy, tmp_path):
    root, run, _ = noisy
    before = (root / "train.csv").read_bytes()
    assert main(["audit", "--data", str(root), str(run / "oof.csv"), "--out",
                 str(tmp_path / "a")]) == 0
    audit_csv = tmp_path / "a" / "audit.csv"
    found = pd.read_csv(audit_csv, dtype=str, keep_default_na=False)
    assert "<img src='data:image/jpeg" in (tmp_path / "a" / "audit.html").read_text()
    train_found = found[found["csv"] == "train.csv"]
    common = ["train", "--data", str(root), "--model", "cnn", "--img-size", "112", "--epochs",
              "1", "-b", "16", "--workers", "0", "--no-progress", "--no-tensorboard",
              "--device", "cpu", "--no-amp"]
    assert main([*common, "--exclude", str(audit_csv), "--out", str(tmp_path / "x")]) == 0
    assert main([*common, "--relabel", str(audit_csv), "--out", str(tmp_path / "r")]) == 0
    assert (root / "train.csv").read_bytes() == before        # the user's CSV is untouched
    x_cfg = yaml.safe_load((tmp_path / "x" / "config.yaml").read_text())
    assert x_cfg["exclude"] == str(audit_csv) and x_cfg["relabel"] is None
    bad = pd.read_csv(tmp_path / "x" / "bad_rows.csv", dtype=str)
    assert set(bad["line"].astype(int)) == set(train_found["line"].astype(int))
    from fastleaf.predict.run_folder import open_run

    table = open_run(tmp_path / "x").table()
    assert len(table.all_train) == len(pd.read_csv(root / "train.csv")) - \
        train_found["line"].nunique()
    relabel = pd.read_csv(tmp_path / "r" / "relabel.csv", dtype=str)
    assert len(relabel) > 0 and (relabel["label"] != relabel["new_label"]).all()
    table = open_run(tmp_path / "r").table()
    at = dict(zip(table.all_train.rows.tolist(), table.all_train.labels.tolist()))
    for line, label in zip(relabel["line"].astype(int), relabel["new_label"]):
        assert table.classes[at[line - 2]] == label


def test_an_audit_of_another_train_csv_is_refused(noisy, tmp_path):
    root, _, _ = noisy
    stale = tmp_path / "audit.csv"
    pd.DataFrame({"image": ["images/nope.jpg"], "csv": ["train.csv"], "line": [2],
                  "suggested_label": ["x"], "reason": ["label_issue"]}).to_csv(stale, index=False)
    with pytest.raises(DataError, match="another train.csv"):
        excluded_rows(stale, root / "train.csv")
    with pytest.raises(DataError, match="another train.csv"):
        relabelled_rows(stale, root / "train.csv")


def test_a_missing_cleanlab_is_one_line_naming_the_extra(noisy, monkeypatch, capsys):
    root, run, _ = noisy
    monkeypatch.setitem(__import__("sys").modules, "cleanlab", None)
    assert main(["audit", "--data", str(root), str(run), "--no-duplicates"]) == 2
    err = capsys.readouterr().out
    assert "[audit]" in err and "cleanlab" in err and "Traceback" not in err


def test_relabel_refuses_a_label_train_csv_does_not_have(noisy, tmp_path):
    root, _, _ = noisy
    first = pd.read_csv(root / "train.csv", dtype=str).iloc[0]
    edited = tmp_path / "audit.csv"
    pd.DataFrame({"image": [first["image"]], "csv": ["train.csv"], "line": [2],
                  "suggested_label": ["acer_rubrm"], "reason": ["label_issue"]}).to_csv(
        edited, index=False)
    with pytest.raises(DataError, match="acer_rubrm"):
        relabelled_rows(edited, root / "train.csv")
    assert excluded_rows(edited, root / "train.csv").keys() == {0}


def test_out_of_fold_rows_map_to_train_csv_lines_with_rows_left_out(noisy):
    root, _, _ = noisy
    images = pd.read_csv(root / "train.csv", dtype=str)["image"].tolist()
    assert train_lines(root, images[1:3] + images[5:6]).tolist() == [3, 4, 7]
    with pytest.raises(DataError, match="no row"):
        train_lines(root, [images[3], images[2]])             # not in train.csv order
