"""Checkpoint choice by metric, the K best epochs, their weight average, the final fit."""
from __future__ import annotations

import csv
import json

import pytest
import torch

from fastleaf.cli import main
from fastleaf.config import resolve_config
from fastleaf.predict.ensemble import PredictSettings
from fastleaf.predict.runner import tta_predict
from fastleaf.train import topk
from fastleaf.train.checkpoint import load_checkpoint
from fastleaf.train.trainer import fit


def quick(data, out, **kw):
    base = dict(data=str(data), out=str(out), model="cnn", img_size=112, epochs=3,
                batch_size=16, lr=1e-3, augment="none", workers=0, progress=False,
                tensorboard=False, val_fraction=0.25, device="cpu")
    base.update(kw)
    return resolve_config(**base)


def fake_state(value: float) -> dict:
    return {"model_name": "cnn", "classes": ["a", "b"], "config": {},
            "model": {"w": torch.full((2,), float(value)), "n": torch.tensor(7)}}


def test_update_top_keeps_the_best_and_removes_the_rest(tmp_path):
    for epoch, score in ((1, 0.5), (2, 0.9), (3, 0.7), (4, 0.6)):
        kept = topk.update_top(tmp_path, 2, epoch, score, "acc", fake_state(epoch))
    assert [e["epoch"] for e in kept] == [2, 3]
    assert sorted(p.name for p in (tmp_path / "top").iterdir()) == ["epoch002.pt", "epoch003.pt"]
    # a resumed run redoing epoch 3 replaces what epoch 3 and later had left
    kept = topk.update_top(tmp_path, 2, 3, 0.95, "acc", fake_state(30))
    assert [e["epoch"] for e in kept] == [3, 2]
    assert load_checkpoint(tmp_path / "top" / "epoch003.pt")["model"]["w"][0] == 30
    path = topk.average_checkpoints(tmp_path, 2)
    state = load_checkpoint(path)
    assert torch.allclose(state["model"]["w"], torch.full((2,), 16.0))   # (30 + 2) / 2
    assert state["model"]["n"].item() == 7 and state["averaged_epochs"] == [3, 2]
    with pytest.raises(topk.CheckpointError, match="--keep-top 3"):
        topk.average_checkpoints(tmp_path, 3)


@pytest.mark.slow
def test_eval_metric_keep_top_and_average_command(tiny_data, tmp_path):
    result = fit(quick(tiny_data, tmp_path / "run", eval_metric="acc", keep_top=2))
    rows = list(csv.DictReader(open(result.run_dir / "metrics.csv")))
    accs = [float(r["acc"]) for r in rows]
    best = load_checkpoint(result.run_dir / "best.pt")
    # best.pt is the first epoch with the highest accuracy, whatever the sum says
    assert best["epoch"] == accs.index(max(accs)) + 1
    ledger = json.loads((result.run_dir / "top.json").read_text())
    assert len(ledger) == 2 and ledger[0]["score"] == pytest.approx(max(accs))
    assert main(["average-checkpoints", str(result.run_dir), "--top", "2"]) == 0
    averaged = result.run_dir / "average-top2.pt"
    sub = tta_predict(tiny_data, [averaged], out=tmp_path / "sub.csv",
                      settings=PredictSettings(tta="none", device="cpu", workers=0))
    assert sub.rows == 18
    assert main(["evaluate", "--checkpoint", str(averaged), "--tta", "none", "--device", "cpu",
                 "--workers", "0"]) == 0


def test_unknown_eval_metric_is_refused(tiny_data, tmp_path):
    with pytest.raises(ValueError, match="--eval-metric 'loss'"):
        fit(quick(tiny_data, tmp_path / "run", eval_metric="loss"))
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_final_fit_trains_every_row_without_validation(tiny_data, tmp_path, capsys):
    result = fit(quick(tiny_data, tmp_path / "final", val_fraction=0.0, epochs=2, keep_top=2))
    assert "no validation runs" in capsys.readouterr().out
    best = load_checkpoint(result.run_dir / "best.pt")
    last = load_checkpoint(result.run_dir / "last.pt")
    assert best["epoch"] == last["epoch"] == 2
    assert all(torch.equal(best["model"][k], last["model"][k]) for k in best["model"])
    # the latest epochs are kept for averaging (SWA over the end of a final fit)
    assert [e["epoch"] for e in topk.read_top(result.run_dir)] == [2, 1]
    rows = list(csv.DictReader(open(result.run_dir / "metrics.csv")))
    assert [r["acc"] for r in rows] == ["nan", "nan"]
    assert float(rows[-1]["train_loss"]) > 0
