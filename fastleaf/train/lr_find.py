"""The learning-rate range test (Smith 2015, "Cyclical Learning Rates"; fastai's ``lr_find``,
Lightning's ``Tuner.lr_find``): train a few hundred steps while the learning rate grows
exponentially, record the loss, stop when it diverges, and put the weights back.

    result = sweep(model, batches, optimizer, precision, loss_fn, start=1e-7, end=10)
    result.suggestion     # where the smoothed loss falls fastest (steepest descent)

The suggestion is the learning rate at the steepest descent of the smoothed loss against
log(lr), searched before the loss's minimum: far enough from the minimum that training is
still stable, where every step still improves the loss the most.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn

from .loop import optimizer_step

SMOOTHING = 0.98          # exponential moving average of the loss (bias-corrected)
DIVERGED = 4.0            # stop once the smoothed loss exceeds this many times its minimum
SKIP_START = 5            # the first points are all noise and warm-up


@dataclass
class SweepResult:
    lrs: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)          # smoothed
    raw_losses: list[float] = field(default_factory=list)
    stopped: str = "reached the end of the range"

    @property
    def suggestion(self) -> float | None:
        return steepest(self.lrs, self.losses)


def steepest(lrs: list[float], losses: list[float]) -> float | None:
    """The lr of the most negative slope of ``losses`` against log(lr), before their minimum."""
    if len(lrs) < SKIP_START + 3:
        return None
    loss = np.asarray(losses, dtype=np.float64)
    log_lr = np.log(np.asarray(lrs, dtype=np.float64))
    lowest = int(np.argmin(loss))
    window = slice(SKIP_START, max(lowest, SKIP_START + 2) + 1)
    slope = np.gradient(loss[window], log_lr[window])
    return float(lrs[window.start + int(np.argmin(slope))])


def lr_at(step: int, steps: int, start: float, end: float) -> float:
    """Exponential schedule from ``start`` (step 0) to ``end`` (the last step)."""
    return start * (end / start) ** (step / max(1, steps - 1))


def set_lr(optimizer: torch.optim.Optimizer, lr: float, scales: list[float]) -> None:
    """Every group at ``lr`` times its own scale (a backbone at a tenth keeps its tenth)."""
    for group, scale in zip(optimizer.param_groups, scales):
        group["lr"] = lr * scale


def sweep(model: nn.Module, batches, optimizer: torch.optim.Optimizer, precision, loss_fn,
          *, start: float = 1e-7, end: float = 10.0, steps: int = 100) -> SweepResult:
    """Run the range test over ``batches`` (an iterable of ``(images, labels)``, cycled if
    short) and restore the model's and the optimizer's state afterwards.

    Args:
        optimizer: built at the run's lr; the groups' ratios to its largest lr are kept.
        start, end: the range of the largest group's lr.
        steps: optimizer steps at most (the sweep stops early when the loss diverges).
    """
    if not 0 < start < end or not all(map(math.isfinite, (start, end))):
        raise ValueError(f"the lr range must satisfy 0 < start < end, got {start}..{end}")
    base = max(group["lr"] for group in optimizer.param_groups)
    scales = [group["lr"] / base if base > 0 else 1.0 for group in optimizer.param_groups]
    saved_model = copy.deepcopy(model.state_dict())
    saved_optimizer = copy.deepcopy(optimizer.state_dict())
    result, average, best = SweepResult(), 0.0, math.inf
    model.train()
    optimizer.zero_grad(set_to_none=True)
    try:
        for step, (images, labels) in zip(range(steps), cycle(batches)):
            lr = lr_at(step, steps, start, end)
            set_lr(optimizer, lr, scales)
            loss = train_step(model, images, labels, optimizer, precision, loss_fn)
            if not math.isfinite(loss):
                result.stopped = f"the loss turned {loss} at lr {lr:.3g}"
                break
            average = SMOOTHING * average + (1 - SMOOTHING) * loss
            smoothed = average / (1 - SMOOTHING ** (step + 1))
            result.lrs.append(lr)
            result.raw_losses.append(loss)
            result.losses.append(smoothed)
            best = min(best, smoothed)
            if step > SKIP_START and smoothed > DIVERGED * best:
                result.stopped = f"the loss diverged at lr {lr:.3g}"
                break
    finally:
        # the sweep leaves no trace: the weights and the optimizer's moments as they were
        model.load_state_dict(saved_model)
        optimizer.load_state_dict(saved_optimizer)
    return result


def cycle(batches):
    while True:
        empty = True
        for batch in batches:
            empty = False
            yield batch
        if empty:
            raise ValueError("the lr finder got no batches")


def train_step(model, images, labels, optimizer, precision, loss_fn) -> float:
    """One step of the training loop's own kind (forward under its autocast, the fp16 scaler,
    :func:`~fastleaf.train.loop.optimizer_step`); the loss as a number."""
    with precision.autocast():
        loss = loss_fn(model(images).float(), labels)
    if precision.scaler is not None:
        precision.scaler.scale(loss).backward()
    else:
        loss.backward()
    optimizer_step(model, optimizer, precision, grad_clip=0.0)
    return float(loss.detach())


def plot(result: SweepResult, path, title: str = "") -> None:
    """The loss against the lr (log axis), the suggestion marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
    ax.plot(result.lrs, result.raw_losses, color="0.8", linewidth=0.8, label="loss")
    ax.plot(result.lrs, result.losses, color="C0", label="smoothed")
    if result.suggestion is not None:
        ax.axvline(result.suggestion, color="C3", linestyle="--",
                   label=f"suggestion {result.suggestion:.2g}")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    ax.set_title(title or "learning-rate range test")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
