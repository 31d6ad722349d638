"""Out-of-fold files of k-fold runs, the blend search, prediction with a blend, pseudo-labels."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from fastleaf.cli import main
from fastleaf.config import resolve_config
from fastleaf.data.table import load_table
from fastleaf.predict import blend
from fastleaf.predict.ensemble import PredictSettings
from fastleaf.predict.runner import tta_predict
from fastleaf import kfold
from fastleaf.predict.oof import read_out_of_fold

CPU = PredictSettings(tta="none", batch_size=32, device="cpu", workers=0)


@pytest.fixture(scope="module")
def two_runs(tiny_data, tmp_path_factory):
    """Two 2-fold runs of one epoch (different seeds: different folds)."""
    root = tmp_path_factory.mktemp("kfold")
    results = []
    for seed in (0, 1):
        cfg = resolve_config(data=str(tiny_data), model="cnn", img_size=112, epochs=1,
                             batch_size=12, lr=1e-3, augment="none", workers=0, device="cpu",
                             tensorboard=False, progress=False, folds=2, seed=seed,
                             out=str(root / f"k{seed}"))
        results.append(kfold.fit_folds(cfg))
    return root, results


@pytest.mark.slow
def test_oof_covers_every_row_once_and_matches_fold_scores(two_runs, tiny_data):
    root, results = two_runs
    train = pd.read_csv(tiny_data / "train.csv", dtype=str)
    for result in results:
        oof = pd.read_csv(result.out_dir / "oof.csv", dtype=str)
        assert list(oof.columns) == ["image", "label", "pred", "fold", "confidence"]
        assert oof["image"].tolist() == train["image"].tolist()      # each row once, in order
        assert oof["label"].tolist() == train["label"].tolist()
        probs = np.load(result.out_dir / "oof_probs.npy")
        assert probs.shape == (72, 6) and probs.dtype == np.float32
        assert np.allclose(probs.sum(1), 1, atol=1e-4)
        # each fold's rows are predicted by that fold's best.pt: its validation accuracy
        for k, run in enumerate(result.runs):
            rows = oof[oof["fold"] == str(k)]
            assert (rows["label"] == rows["pred"]).mean() == pytest.approx(run.best["acc"])
        folds_csv = pd.read_csv(result.out_dir / "folds.csv", dtype=str)
        cv = folds_csv[folds_csv["fold"] == "cv"].iloc[0]
        assert float(cv["acc"]) == pytest.approx((oof["label"] == oof["pred"]).mean(), abs=1e-6)
        assert read_out_of_fold(result.out_dir).metrics["acc"] == pytest.approx(float(cv["acc"]))


@pytest.mark.slow
def test_blend_command_and_prediction_with_its_file(two_runs, tiny_data, tmp_path, capsys):
    root, _ = two_runs
    out = tmp_path / "blend.json"
    assert main(["blend", str(root / "k0"), str(root / "k1"), "--out", str(out),
                 "--temperature"]) == 0
    text = capsys.readouterr().out
    assert "blend" in text and "equal weights" in text and "held-back" in text
    spec = json.loads(out.read_text())
    # members are named relative to the blend file: the folder tree moves as a whole
    assert all(not m["run"].startswith("/") for m in spec["members"])
    assert set(spec["cv"]) == {"acc", "f1_macro", "kappa", "sum"} and spec["rows"] == 72
    members = blend.read_blend(out)
    assert [m["run"] for m in members] == [(root / "k0").resolve(), (root / "k1").resolve()]
    assert sum(m["weight"] for m in members) == pytest.approx(1.0)

    sub = tta_predict(tiny_data, [], out=tmp_path / "sub.csv", settings=CPU, blend=out,
                      save_probs=tmp_path / "test.npy")
    assert sub.output.members == 4 and sub.rows == 18            # 2 members x 2 folds
    written = pd.read_csv(tmp_path / "sub.csv", dtype=str)
    test = pd.read_csv(tiny_data / "test.csv", dtype=str)
    assert written["image"].tolist() == test["image"].tolist()
    # the test probabilities share the out-of-fold layout: float32, class order classes.json
    test_probs = np.load(tmp_path / "test.npy")
    oof_probs = np.load(root / "k0" / "oof_probs.npy")
    assert test_probs.dtype == oof_probs.dtype and test_probs.shape[1] == oof_probs.shape[1]
    # by hand: fold mean within each member, temperature, then member weights
    by_hand = 0
    for m in members:
        p = tta_predict(tiny_data, [m["run"]], out=tmp_path / "one.csv", settings=CPU)
        by_hand = by_hand + m["weight"] * blend.tempered(p.output.probs.double().numpy(),
                                                         m["temperature"])
    assert np.allclose(test_probs, by_hand, atol=1e-5)
    with pytest.raises(ValueError, match="--blend names its own"):
        tta_predict(tiny_data, [root / "k0"], out=tmp_path / "x.csv", settings=CPU, blend=out)


def synthetic_members(seed=0, n=400, classes=5):
    """A good member (right on ~85 % of rows) and a noise member (random probabilities)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    good = rng.dirichlet(np.ones(classes), n)
    right = rng.random(n) < 0.85
    good[right, labels[right]] += 1.0
    good /= good.sum(1, keepdims=True)
    noise = rng.dirichlet(np.ones(classes) * 0.3, n)
    return labels, good, noise


def test_search_down_weights_a_noise_member_and_holds_back():
    labels, good, noise = synthetic_members()
    weights = blend.search_weights([good, noise], labels)
    assert weights[0] > 0.6 and weights.sum() == pytest.approx(1.0)
    acc = lambda p: (p.argmax(1) == labels).mean()  # noqa: E731
    assert acc(blend.mix([good, noise], weights)) >= acc(good) > acc(
        blend.mix([good, noise], np.ones(2)))
    held = blend.held_back_check([good, noise], labels, "acc", temperature=False)
    assert held["kept"] == "searched" and held["searched"] > held["equal"]


def test_temperature_flattens_an_overconfident_member():
    labels, good, _ = synthetic_members(seed=1)
    overconfident = blend.tempered(good, 0.2)          # sharpened 5 x
    t = blend.fit_temperature(overconfident, labels)
    assert 2.0 < t < 20.0
    assert blend.log_loss(blend.tempered(overconfident, t), labels) < blend.log_loss(
        overconfident, labels)
    assert np.array_equal(blend.tempered(good, 3.0).argmax(1), good.argmax(1))


def test_blend_refuses_runs_without_oof(tmp_path):
    (tmp_path / "r").mkdir()
    with pytest.raises(Exception, match="no oof.csv"):
        blend.blend_runs([tmp_path / "r"])


@pytest.mark.slow
def test_pseudo_label_folder_trains_as_is(two_runs, tiny_data, tmp_path):
    root, _ = two_runs
    new = tmp_path / "pseudo"
    assert main(["pseudo-label", "--checkpoint", str(root / "k0"), "--data", str(tiny_data),
                 "--threshold", "0.0", "--tta", "none", "--device", "cpu", "--workers", "0",
                 "--out", str(new)]) == 0
    frame = pd.read_csv(new / "train.csv", dtype=str, keep_default_na=False)
    assert frame["source"].value_counts().to_dict() == {"train": 72, "pseudo": 18}
    assert not (new / "images").exists()                  # referenced, not copied or linked
    assert "image_root" in (new / "data.yaml").read_text()
    # pseudo rows train in every fold and never validate
    pseudo_rows = set(np.flatnonzero(frame["source"] == "pseudo").tolist())
    for fold in range(2):
        table = load_table(new, fold=fold, folds=2, seed=0)
        assert pseudo_rows <= set(table.train.rows.tolist())
        assert not pseudo_rows & set(table.val.rows.tolist())
    assert main(["train", "--data", str(new), "--model", "cnn", "--img-size", "112", "--epochs",
                 "1", "--batch-size", "16", "--workers", "0", "--device", "cpu",
                 "--no-tensorboard", "--no-progress", "--out", str(tmp_path / "run")]) == 0
    assert (tmp_path / "run" / "best.pt").is_file()
    # a second round refuses to overwrite, and a high threshold adds fewer rows
    assert main(["pseudo-label", "--checkpoint", str(root / "k0"), "--data", str(tiny_data),
                 "--out", str(new), "--tta", "none", "--device", "cpu"]) == 2
    assert main(["pseudo-label", "--checkpoint", str(root / "k0"), "--data", str(tiny_data),
                 "--threshold", "0.99", "--tta", "none", "--device", "cpu", "--workers", "0",
                 "--out", str(tmp_path / "strict")]) == 0
    strict = pd.read_csv(tmp_path / "strict" / "train.csv", dtype=str, keep_default_na=False)
    assert (strict["source"] == "pseudo").sum() < 18
