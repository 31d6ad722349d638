"""Count the host syncs of a CUDA code path: every one stalls the CPU until the GPU catches up.

PyTorch reports each synchronising call (``.item()``, ``nonzero()``, a copy from pageable
memory, ``torch.cuda.synchronize``) as a warning under ``torch.cuda.set_sync_debug_mode``;
this counts those warnings.  Syncs inside DALI's own engine are not PyTorch calls and are not
seen.

    from fastleaf.bench.syncs import loader_syncs, loop_syncs
    loader_syncs(loader, batches=4)          # syncs per steady-state batch, expected 0
    loop_syncs(model, batches, precision)    # syncs in one call of train_one_epoch
"""
from __future__ import annotations

import warnings
from typing import Callable

import torch
import torch.nn as nn

WARMUP_BATCHES = 2    # the first batches of an epoch set things up (orders, pinned buffers)


def count_syncs(fn: Callable[[], object]) -> tuple[int, object]:
    """(host syncs PyTorch reported while ``fn`` ran, what ``fn`` returned)."""
    torch.cuda.synchronize()
    previous = torch.cuda.get_sync_debug_mode()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            result = fn()
        finally:
            torch.cuda.set_sync_debug_mode(previous)
    torch.cuda.synchronize()
    return sum("synchroniz" in str(w.message) for w in caught), result


def loader_syncs(loader, batches: int = 4) -> float:
    """Host syncs per batch of ``loader`` once an epoch is under way."""
    loader.set_epoch(0)
    it = iter(loader)
    for _ in range(WARMUP_BATCHES):
        next(it)
    count, _ = count_syncs(lambda: [next(it) for _ in range(batches)])
    return count / batches


def loop_syncs(model: nn.Module, batches: list, precision, optimizer=None,
               on_step: Callable | None = None) -> int:
    """Host syncs of one ``train_one_epoch`` call over ``batches`` (after a warm-up call)."""
    from ..train.loop import train_one_epoch
    from ..train.optim import create_optimizer

    optimizer = optimizer or create_optimizer(model, "adam", 3e-4)
    loss_fn = nn.CrossEntropyLoss()
    train_one_epoch(model, batches[:2], optimizer, precision, loss_fn)   # lazy state, autotune
    count, _ = count_syncs(lambda: train_one_epoch(model, batches, optimizer, precision, loss_fn,
                                                   on_step=on_step))
    return count


def expected_loop_syncs(steps: int, every: int) -> int:
    """What ``train_one_epoch`` may sync: one per progress interval, and the epoch's end
    (``synchronize`` plus reading the mean loss)."""
    return -(-steps // every) + 2
