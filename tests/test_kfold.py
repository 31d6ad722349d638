"""Stratified folds, ``fit_folds`` run folders + folds.csv, and fold runs as one ensemble."""
from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
import pytest

from fastleaf.commands import train as train_command
from fastleaf.config import resolve_config
from fastleaf.data.table import fold_indices
from fastleaf.predict.ensemble import PredictSettings, load_members
from fastleaf.predict.runner import tta_predict
from fastleaf.predict.scoring import evaluate_checkpoints
from fastleaf import kfold


def test_folds_disjoint_cover_and_stratified():
    labels = np.repeat(np.arange(4), [10, 10, 7, 13])
    vals = []
    for fold in range(5):
        train, val = fold_indices(labels, fold, 5, seed=3)
        assert not set(train) & set(val)
        assert len(train) + len(val) == len(labels)
        counts = np.bincount(labels[val], minlength=4)
        # each class spreads evenly: ~1/5 of its rows per fold (StratifiedKFold rounding)
        assert np.all(np.abs(counts - np.bincount(labels) / 5) <= 1), counts
        vals.append(val)
    every = np.concatenate(vals)
    assert sorted(every.tolist()) == list(range(len(labels)))     # each row validates once


def test_summarise_by_hand():
    rows = [{m: float(v) for m in kfold.FOLD_METRICS} for v in (1, 3)]
    mean, std = kfold.summarise(rows)
    assert mean["acc"] == 2.0 and std["acc"] == pytest.approx(np.sqrt(2.0))


def test_train_command_runs_every_fold_when_no_fold_given(monkeypatch):
    seen = []
    monkeypatch.setattr(kfold, "fit_folds", lambda cfg: seen.append(cfg) or "result")
    monkeypatch.setattr(kfold, "print_folds", lambda result: seen.append(result))
    parser = argparse.ArgumentParser()
    train_command.add_arguments(parser)
    assert train_command.run(parser.parse_args(["--folds", "3", "--epochs", "1"])) == 0
    assert seen[0].folds == 3 and seen[0].fold is None and seen[1] == "result"


@pytest.mark.slow
def test_fit_folds_writes_runs_and_table(tiny_data, tmp_path):
    out = tmp_path / "kfold"
    cfg = resolve_config(data=str(tiny_data), model="cnn", img_size=112, epochs=1, batch_size=12,
                         lr=1e-3, augment="none", workers=0, channels_last=True, device="cpu",
                         tensorboard=False, progress=False, folds=2,
                         out=str(out))
    result = kfold.fit_folds(cfg)
    assert [r.run_dir for r in result.runs] == [out / "fold0", out / "fold1"]
    for k in range(2):
        assert (out / f"fold{k}" / "best.pt").is_file()
        assert f"fold: {k}" in (out / f"fold{k}" / "config.yaml").read_text()
    table = pd.read_csv(out / "folds.csv", dtype=str)
    assert table["fold"].tolist() == ["0", "1", "mean", "std", "cv"]     # cv: out-of-fold
    accs = [r.best["acc"] for r in result.runs]
    assert float(table["acc"].iloc[2]) == pytest.approx(np.mean(accs), abs=1e-5)

    # a folder's weight is shared by its runs
    members = load_members([out, out / "fold0"], weights="1,1")
    assert [m.weight for m in members] == [0.25, 0.25, 0.5]
    # the folder of fold runs is one ensemble for prediction...
    settings = PredictSettings(tta="none", batch_size=32, device="cpu", workers=0)
    sub = tta_predict(tiny_data, [out], out=tmp_path / "sub.csv", settings=settings)
    assert sub.output.members == 2 and sub.rows == 18
    # ...and each fold scores its own held-out rows: out-of-fold over every training row
    evaluated = evaluate_checkpoints([out], tta="none", settings=PredictSettings(
        batch_size=None, amp=None, amp_dtype=None, channels_last=None, device="cpu", workers=0))
    assert evaluated.images == 72 and "out-of-fold" in evaluated.source
