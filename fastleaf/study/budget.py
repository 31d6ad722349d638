"""What a study will cost, from a few timed steps of each model on this machine.

Pure arithmetic over measurements (:mod:`fastleaf.study.probe` takes them):

    seconds(model) = setup + images x check time per image
                     + epochs x (train steps x step time + eval batches x batch time)
                     + one more evaluation pass for the report

``quick_plan`` picks the largest stratified subset (images per class) that lets every model
train ``QUICK_EPOCHS`` epochs inside the budget, fewer epochs only when no subset fits.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

QUICK_EPOCHS = 3
# images per class tried by --quick, most first (None: all of them)
PER_CLASS = (None, 40, 30, 20, 15, 12, 10, 8, 6, 5, 4, 3)


@dataclass(frozen=True)
class Timing:
    """One model measured with its real loader, at its run's batch size."""

    model: str
    setup_s: float          # building the loaders and the model
    train_step_s: float     # one training step (forward, backward, optimizer step)
    eval_batch_s: float     # one validation batch
    check_s: float = 0.0    # the data check every run starts with, per image


@dataclass(frozen=True)
class Work:
    """How much one model's run does: epochs of train steps and validation batches."""

    epochs: int
    train_steps: int        # per epoch (the ragged last batch is dropped)
    eval_batches: int       # per epoch, and once more for the report
    images: int = 0         # what the data check reads


def work_for(train_images: int, val_images: int, batch_size: int, epochs: int) -> Work:
    return Work(epochs, train_images // batch_size, math.ceil(val_images / batch_size),
                train_images + val_images)


def model_seconds(timing: Timing, work: Work) -> float:
    """The estimated wall time of one model's run plus its report pass."""
    epoch = work.train_steps * timing.train_step_s + work.eval_batches * timing.eval_batch_s
    report = work.eval_batches * timing.eval_batch_s
    return timing.setup_s + timing.check_s * work.images + work.epochs * epoch + report


def estimate(timings: dict[str, Timing], works: dict[str, Work]) -> dict[str, float]:
    """Seconds per model (the models of ``works``)."""
    return {m: model_seconds(timings[m], work) for m, work in works.items()}


def split_counts(labels, per_class: int | None, val_fraction: float) -> tuple[int, int]:
    """(train, validation) images of a stratified subset, as the seeded split divides it:
    per class round(n x fraction) validate, at least one image trains."""
    _, counts = np.unique(np.asarray(labels), return_counts=True)
    if per_class is not None:
        counts = np.minimum(counts, per_class)
    val = np.minimum(np.rint(counts * val_fraction).astype(int), counts - 1)
    return int(counts.sum() - val.sum()), int(val.sum())


@dataclass(frozen=True)
class QuickPlan:
    epochs: int
    per_class: int | None
    seconds: dict           # model -> estimated seconds
    fits: bool              # False: even the smallest plan is over the budget

    @property
    def total_s(self) -> float:
        return sum(self.seconds.values())


def quick_plan(timings: dict[str, Timing], labels, batch_size: int, val_fraction: float,
               budget_s: float, epochs: int | None = None) -> QuickPlan:
    """The largest subset and most epochs (up to ``QUICK_EPOCHS``, or exactly ``epochs``)
    whose estimate fits ``budget_s``; the smallest plan, marked ``fits=False``, otherwise."""
    choices = [epochs] if epochs else list(range(QUICK_EPOCHS, 0, -1))
    sizes = [k for k in PER_CLASS if k is None or k < max_count(labels)]
    plan = None
    for n_epochs in choices:
        for per_class in sizes:
            train, val = split_counts(labels, per_class, val_fraction)
            if train < batch_size:
                continue              # not one full training batch: nothing would train
            work = work_for(train, val, batch_size, n_epochs)
            seconds = estimate(timings, {m: work for m in timings})
            plan = QuickPlan(n_epochs, per_class, seconds, sum(seconds.values()) <= budget_s)
            if plan.fits:
                return plan
    if plan is None:
        raise ValueError(f"fewer than {batch_size} training images even with every image: "
                         f"lower --batch-size")
    return plan


def max_count(labels) -> int:
    return int(np.unique(np.asarray(labels), return_counts=True)[1].max())
