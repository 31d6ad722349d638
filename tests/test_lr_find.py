"""The learning-rate range test: a suggestion near a known-good rate, weights put back, the
divergence stop, and the command on a small run."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn as nn

from fastleaf.cli import main
from fastleaf.train.lr_find import lr_at, steepest, sweep
from fastleaf.train.precision import create_precision

CPU = torch.device("cpu")
FP32 = create_precision(False, CPU)
OPTIMIZERS = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD}


def problem():
    """Five overlapping Gaussian classes: a loss floor above zero, so too large a rate shows."""
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(5, 20, generator=g) * 0.7
    y = torch.randint(0, 5, (512,), generator=g)
    x = centres[y] + torch.randn(512, 20, generator=g)
    return x, y, [(x[i:i + 64], y[i:i + 64]) for i in range(0, 512, 64)]


def model():
    torch.manual_seed(1)
    return nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 5))


def best_fixed_rate(name, x, y, batches) -> float:
    """The rate of a grid (half decades) with the lowest loss after two epochs."""
    scores = {}
    for rate in 10.0 ** np.arange(-4, 1.0, 0.5):
        net, loss_fn = model(), nn.CrossEntropyLoss()
        opt = OPTIMIZERS[name](net.parameters(), lr=float(rate))
        for _ in range(2):
            for xb, yb in batches:
                loss = loss_fn(net(xb), yb)
                opt.zero_grad()
                loss.backward()
                opt.step()
        final = loss_fn(net(x), y).item()
        scores[float(rate)] = final if math.isfinite(final) else math.inf
    return min(scores, key=scores.get)


@pytest.mark.parametrize("name", ["adam", "sgd"])
def test_the_suggestion_lies_within_a_decade_of_a_known_good_rate(name):
    x, y, batches = problem()
    good = best_fixed_rate(name, x, y, batches)
    net = model()
    result = sweep(net, batches, OPTIMIZERS[name](net.parameters(), lr=1e-3), FP32,
                   nn.CrossEntropyLoss(), start=1e-6, end=100.0, steps=100)
    assert result.suggestion is not None
    assert good / 10 <= result.suggestion <= good * 10, (result.suggestion, good)
    assert "diverged" in result.stopped and len(result.lrs) < 100     # stopped at divergence


def test_the_sweep_puts_the_weights_and_the_optimizer_back():
    x, y, batches = problem()
    net = model()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    nn.CrossEntropyLoss()(net(x), y).backward()
    opt.step()                                      # moments exist before the sweep
    before = {k: v.clone() for k, v in net.state_dict().items()}
    moments = opt.state_dict()["state"][0]["exp_avg"].clone()
    sweep(net, batches, opt, FP32, nn.CrossEntropyLoss(), start=1e-5, end=10.0, steps=30)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert torch.equal(opt.state_dict()["state"][0]["exp_avg"], moments)
    assert opt.param_groups[0]["lr"] == 1e-3


def test_group_ratios_are_kept_and_the_schedule_is_exponential():
    net = model()
    opt = torch.optim.SGD([{"params": net[0].parameters(), "lr": 1e-4},     # a slow backbone
                           {"params": net[2].parameters(), "lr": 1e-3}], lr=1e-3)
    seen = []
    original = opt.step

    def step(*a, **kw):
        seen.append([g["lr"] for g in opt.param_groups])
        return original(*a, **kw)

    opt.step = step
    _, _, batches = problem()
    sweep(net, batches, opt, FP32, nn.CrossEntropyLoss(), start=1e-4, end=1e-2, steps=3)
    assert seen == [pytest.approx([1e-5, 1e-4]), pytest.approx([1e-4, 1e-3]),
                    pytest.approx([1e-3, 1e-2])]
    assert lr_at(0, 3, 1e-4, 1e-2) == pytest.approx(1e-4)
    assert lr_at(2, 3, 1e-4, 1e-2) == pytest.approx(1e-2)


def test_steepest_descent_is_found_before_the_minimum():
    lrs = list(10.0 ** np.linspace(-6, 0, 60))
    # flat, a steep fall centred at 1e-3, a floor, then a rise
    log = np.log10(lrs)
    losses = list(2 - 1.5 / (1 + np.exp(-(log + 3) * 6)) + np.maximum(0, log + 1) ** 2)
    assert steepest(lrs, losses) == pytest.approx(1e-3, rel=0.3)
    assert steepest(lrs[:4], losses[:4]) is None


@pytest.mark.slow
def test_the_command_writes_the_curve_and_prints_a_suggestion(tiny_data, tmp_path, capsys):
    out = tmp_path / "lr"
    code = main(["lr-find", "--data", str(tiny_data), "--model", "cnn", "--img-size", "112",
                 "-b", "8", "-j", "0", "--device", "cpu", "--no-amp", "--lr-steps", "20",
                 "--lr-start", "1e-5", "--lr-end", "1", "--out", str(out)])
    text = capsys.readouterr().out
    assert (out / "lr_find.png").stat().st_size > 1000
    assert code == 0 and "20 steps, " in text and "suggested learning rate:" in text


@pytest.mark.slow
def test_train_lr_auto_runs_the_range_test_first_and_records_its_rate(tiny_data, tmp_path,
                                                                      capsys):
    import yaml

    out = tmp_path / "run"
    code = main(["train", "--data", str(tiny_data), "--model", "cnn", "--img-size", "112",
                 "-b", "8", "-j", "0", "--device", "cpu", "--no-amp", "--no-progress",
                 "--no-tensorboard", "--no-check-data", "--epochs", "1", "--lr", "auto",
                 "--out", str(out)])
    assert code == 0
    said = [line for line in capsys.readouterr().out.splitlines() if line.startswith("--lr auto:")]
    assert len(said) == 1
    recorded = yaml.safe_load((out / "config.yaml").read_text())["lr"]
    assert isinstance(recorded, float) and float(said[0].split()[2]) == pytest.approx(recorded,
                                                                                    rel=1e-2)


def test_lr_is_a_number_or_auto(tmp_path):
    from fastleaf.config import ConfigError, resolve_config

    assert resolve_config(lr="auto").lr == "auto"
    with pytest.raises(ConfigError, match="lr must be a number or auto"):
        resolve_config(lr="fast")
