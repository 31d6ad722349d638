"""The weight EMA: its decay from the run's length, and the raw-vs-average pick for best.pt."""
from __future__ import annotations

import pytest
import torch

from fastleaf.config import resolve_config
from fastleaf.errors import UsageError
from fastleaf.train.ema import (DECAY_RANGE, create_ema, decay_for_steps, prefer_ema,
                                resolve_decay)


def test_decay_spans_a_tenth_of_the_run():
    # 8 epochs of 20 steps: a 16-step horizon; of 43 steps (leafsnap-fg176): 34.4 steps
    assert decay_for_steps(160) == pytest.approx(1 - 1 / 16)
    assert decay_for_steps(344) == pytest.approx(1 - 1 / 34.4)
    assert decay_for_steps(400_000) == pytest.approx(1 - 1 / 40_000) or \
        decay_for_steps(400_000) == DECAY_RANGE[1]
    # a run too short for a 10-step horizon, and one too long for 10,000 steps: the bounds
    assert decay_for_steps(20) == DECAY_RANGE[0] and decay_for_steps(0) == DECAY_RANGE[0]
    assert decay_for_steps(10**8) == DECAY_RANGE[1]
    runs = [decay_for_steps(n) for n in (200, 1000, 10_000, 50_000)]
    assert runs == sorted(runs) and len(set(runs)) == len(runs)


def test_an_explicit_decay_wins_over_the_run_length():
    decay, why = resolve_decay(None, 160)
    assert decay == pytest.approx(0.9375) and "160 optimizer steps" in why
    assert resolve_decay(0.998, 160) == (0.998, "--model-ema-decay 0.998")
    with pytest.raises(UsageError, match="model-ema-decay"):
        resolve_decay(1.0, 160)


def test_the_old_fixed_decay_never_bites_in_a_short_run():
    """timm's warmup holds the decay at 1 - t**(-2/3): 0.998 would need 11,180 steps, so in a
    160-step run the average's horizon at the end is about 30 steps, not 500."""
    ema = create_ema(torch.nn.Linear(2, 2), 0.998)
    assert ema.get_decay(1) == 0.0 and ema.get_decay(20) == pytest.approx(1 - 20 ** (-2 / 3))
    assert ema.get_decay(160) == pytest.approx(0.9661, abs=1e-4)      # not 0.998
    capped = create_ema(torch.nn.Linear(2, 2), decay_for_steps(160))
    assert capped.get_decay(160) == pytest.approx(0.9375)


def test_a_tie_keeps_the_average_and_a_worse_average_is_dropped():
    assert prefer_ema({"acc": 0.5}, {"acc": 0.5}, "acc")
    assert not prefer_ema({"acc": 0.9, "sum": 1.0}, {"acc": 0.3, "sum": 2.0}, "acc")
    assert prefer_ema({"acc": 0.9, "sum": 1.0}, {"acc": 0.3, "sum": 2.0}, "sum")


@pytest.fixture(scope="module")
def fast_run(tiny_data, tmp_path_factory):
    """A short run whose raw weights improve fast: head-only first epoch, then a high rate."""
    from fastleaf.train.trainer import fit

    out = tmp_path_factory.mktemp("ema") / "run"
    cfg = resolve_config(data=str(tiny_data), model="cnn", img_size=112, epochs=3, batch_size=8,
                         lr=3e-3, optimizer="adamw", scheduler="cosine", freeze_epochs=1,
                         model_ema=True, eval_metric="acc", augment="none", workers=0,
                         device="cpu", amp=False, tensorboard=False, progress=False,
                         check_data=False, out=str(out))
    return fit(cfg)


def test_each_epoch_scores_both_and_keeps_the_better(fast_run):
    from fastleaf.utils.csv_rows import read_rows

    rows = read_rows(fast_run.run_dir / "metrics.csv")
    assert len(rows) == 3
    for row in rows:
        raw, averaged = float(row["raw_acc"]), float(row["ema_acc"])
        assert float(row["acc"]) == pytest.approx(max(raw, averaged))
        assert row["ema"] == str(averaged >= raw)
    # the run this fixture makes: the raw weights lead once the backbone trains
    assert any(float(r["raw_acc"]) > float(r["ema_acc"]) for r in rows)


def test_best_checkpoint_reads_back_as_the_weights_it_names(fast_run):
    from fastleaf.predict.run_folder import open_run
    from fastleaf.train.checkpoint import load_checkpoint

    best = load_checkpoint(fast_run.run_dir / "best.pt")
    assert best["ema"] == (best["metrics"]["ema_acc"] >= best["metrics"]["raw_acc"])
    assert best["metrics"]["acc"] == max(best["metrics"]["raw_acc"], best["metrics"]["ema_acc"])
    # the finished-run reader rebuilds best.pt's model and reproduces its recorded accuracy
    run = open_run(fast_run.run_dir)
    model = run.build_model("cpu")
    samples = run.val_samples()
    loader = run.eval_loader(samples, torch.device("cpu"), workers=0, loader="workers")
    with torch.no_grad():
        predicted = torch.cat([model(images).argmax(-1) for images, _ in loader])
    acc = float((predicted == torch.as_tensor(samples.labels)).float().mean())
    assert acc == pytest.approx(best["metrics"]["acc"], abs=1e-6)


def test_the_run_records_the_decay_it_chose(fast_run):
    from fastleaf.config import load_yaml

    saved = load_yaml(fast_run.run_dir / "config.yaml")
    # 3 epochs of 7 steps: a 2.1-step horizon, raised to the lowest decay allowed
    assert saved["model_ema_decay"] == DECAY_RANGE[0]


def test_norm_statistics_are_copied_and_weights_averaged():
    """Averaged running statistics describe activations of older weights twice over; at the
    end of a short run they cost the average most of its accuracy (benchmarks/ema_lag.py)."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    ema = create_ema(model, 0.9)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    for step in range(1, 6):
        model(torch.randn(8, 3, 8, 8) * step + step).pow(2).mean().backward()   # stats drift
        opt.step()
        opt.zero_grad()
        ema.update(model, step=step)
    raw, averaged = model.state_dict(), ema.module.state_dict()
    for name in ("1.running_mean", "1.running_var", "1.num_batches_tracked"):
        assert torch.equal(averaged[name], raw[name]), name
    assert not torch.allclose(averaged["1.weight"], raw["1.weight"])     # the norm's scale
