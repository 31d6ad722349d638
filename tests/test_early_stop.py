"""``--early-stop PATIENCE [--min-delta D]``: the stop, its reason, and a resume that agrees."""
from __future__ import annotations

import csv

import pytest

from fastleaf.config import resolve_config
from fastleaf.errors import UsageError
from fastleaf.train import trainer
from fastleaf.train.early_stop import stale_epochs, stop_reason
from fastleaf.train.trainer import fit


def rows(*scores):
    return [{"epoch": str(i), "acc": str(s)} for i, s in enumerate(scores, 1)]


def test_stale_epochs_count_from_the_last_real_improvement():
    assert stale_epochs(rows(0.1, 0.3, 0.2, 0.25), "acc") == (2, 2)
    assert stale_epochs(rows(0.1, 0.3, 0.305, 0.31), "acc", min_delta=0.01) == (2, 2)
    assert stale_epochs(rows(0.1, 0.3, 0.305, 0.32), "acc", min_delta=0.01) == (0, 4)
    assert stop_reason(rows(0.5, 0.4, 0.4), "acc", patience=3) is None
    reason = stop_reason(rows(0.5, 0.4, 0.4, 0.45), "acc", patience=3)
    assert "acc has not improved at all for 3 epochs (best at epoch 1" in reason
    assert stop_reason(rows(0.5, 0.4, 0.4, 0.45), "acc", patience=0) is None


def metric_rows(run_dir):
    with open(run_dir / "metrics.csv") as f:
        return list(csv.DictReader(f))


def config(tiny_data, out, **kw):
    base = dict(data=str(tiny_data), model="cnn", img_size=112, batch_size=16, workers=0,
                device="cpu", amp=False, progress=False, tensorboard=False, check_data=False,
                out=str(out), epochs=6, early_stop=2)
    base.update(kw)
    return resolve_config(**base)


@pytest.mark.slow
def test_training_stops_when_the_metric_stalls_and_a_resume_agrees(tiny_data, tmp_path,
                                                                    monkeypatch):
    # the metric is made to stall from epoch 2 on: validation scores a fixed sequence
    scores = iter([0.5, 0.4, 0.45, 0.6, 0.7, 0.8] * 3)
    real = trainer.validate

    def scripted(run):
        loss, metrics, rate = real(run)
        metrics = dict(metrics, sum=next(scores))
        return loss, metrics, rate

    monkeypatch.setattr(trainer, "validate", scripted)
    out = tmp_path / "run"
    result = fit(config(tiny_data, out))
    got = metric_rows(out)
    assert [r["epoch"] for r in got] == ["1", "2", "3"]          # 2 epochs without a better sum
    assert "early stop: sum has not improved" in got[-1]["note"] and result.best_epoch == 1
    assert (out / "best.pt").is_file() and (out / "last.pt").is_file()
    from fastleaf.viz.runs import read_run

    assert read_run(out).rows[-1]["note"].startswith("early stop")      # report reads it
    # resumed with more epochs: it had already stopped, so it trains no further
    from fastleaf.train.resume import resume_config

    fit(resume_config(out, epochs=8))
    assert [r["epoch"] for r in metric_rows(out)] == ["1", "2", "3"]


def test_early_stop_without_validation_is_refused(tiny_data, tmp_path):
    with pytest.raises(UsageError, match="--early-stop"):
        fit(config(tiny_data, tmp_path / "run", val_fraction=0.0))
