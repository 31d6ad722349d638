"""Timing primitives: a bounded batch stream, warm-up apart, device-synchronised repeats."""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable, Iterator

import torch

from ..utils.device import synchronize


def batch_stream(loader) -> Iterator:
    """Batches from ``loader`` forever, one epoch after another (``set_epoch`` each time)."""
    epoch = 0
    while True:
        loader.set_epoch(epoch)
        empty = True
        for batch in loader:
            empty = False
            yield batch
        if empty:
            raise ValueError(f"{loader.backend} loader yielded no batches")
        epoch += 1


class Steps:
    """``steps`` batches taken from a stream, cut short once ``max_seconds`` have passed.

    Looks like a loader to the training loop: iterable with a length.
    """

    def __init__(self, stream: Iterator, steps: int, max_seconds: float = float("inf")):
        self.stream, self.steps, self.max_seconds = stream, steps, max_seconds
        self.images = 0

    def __len__(self) -> int:
        return self.steps

    def __iter__(self):
        start = time.perf_counter()
        for i in range(self.steps):
            if i and time.perf_counter() - start > self.max_seconds:
                return
            images, labels = next(self.stream)
            self.images += len(labels)
            yield images, labels


@dataclass
class Timing:
    img_per_s: float        # median over repeats
    img_per_s_min: float
    img_per_s_max: float
    warmup_s: float         # wall time of the warm-up steps (includes any compilation)


def time_repeats(run: Callable[[Steps], None], stream: Iterator, device: torch.device, *,
                 warmup: int, steps: int, repeats: int, max_seconds: float) -> Timing:
    """Run ``warmup`` untimed steps, then ``repeats`` timed runs of up to ``steps`` steps.

    Args:
        run: consumes a :class:`Steps` (one pass of the training loop or of prediction).
        device: synchronised before and after every timed run.
    Returns: images/sec median, min and max over the repeats, and the warm-up time.
    """
    start = time.perf_counter()
    if warmup:
        run(Steps(stream, warmup))
    synchronize(device)
    warmup_s = time.perf_counter() - start
    rates = []
    for _ in range(repeats):
        steps_run = Steps(stream, steps, max_seconds)
        synchronize(device)
        start = time.perf_counter()
        run(steps_run)
        synchronize(device)
        rates.append(steps_run.images / max(time.perf_counter() - start, 1e-9))
    return Timing(statistics.median(rates), min(rates), max(rates), warmup_s)
