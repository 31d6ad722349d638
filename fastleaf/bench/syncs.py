"""Count the host syncs of a CUDA code path: every one stalls the CPU until the GPU catches up.

PyTorch reports each synchronising call (``.item()``, ``nonzero()``, a copy from pageable
memory, ``torch.cuda.synchronize``) as a warning under ``torch.cuda.set_sync_debug_mode``;
this counts those warnings.  Syncs inside DALI's own engine are not PyTorch calls and are not
seen.

    from fastleaf.bench.syncs import loader_syncs, loop_syncs
    loader_syncs(loader, batches=4)          # syncs per steady-state batch (and where)
    loop_syncs(model, batches, precision)    # syncs in one call of train_one_epoch
"""
from __future__ import annotations

import threading
import warnings
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

import torch
import torch.nn as nn

WARMUP_BATCHES = 2    # the first batches of an epoch set things up (orders, pinned buffers)


@contextmanager
def sync_debug_mode(mode: str):
    """PyTorch's host-sync debug ``mode`` while the block runs, on a quiet device before and
    after (work queued outside the block is not counted in it)."""
    torch.cuda.synchronize()
    previous = torch.cuda.get_sync_debug_mode()
    torch.cuda.set_sync_debug_mode(mode)
    try:
        yield
    finally:
        torch.cuda.set_sync_debug_mode(previous)
        torch.cuda.synchronize()


def record_syncs(fn: Callable[[], object]) -> tuple[list[str], object]:
    """(one ``"thread: file:line"`` per host sync PyTorch reported while ``fn`` ran, what ``fn``
    returned).  The thread matters: a sync on the thread that launches the model's work stalls
    training, one on a helper thread (the DataLoader's pin-memory thread) stalls only that
    helper; the place is the Python line that made the call, or, for a sync made by C++ code
    outside a Python call, the next call into PyTorch (:func:`locate_sync` finds those)."""
    seen: list[str] = []

    def note(message, category, filename, lineno, file=None, line=None):
        if "synchroniz" in str(message):
            seen.append(f"{threading.current_thread().name}: {filename}:{lineno}")

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = note      # catch_warnings puts the old one back
        with sync_debug_mode("warn"):
            result = fn()
    return seen, result


def count_syncs(fn: Callable[[], object]) -> tuple[int, object]:
    """(host syncs PyTorch reported while ``fn`` ran, on any thread; what ``fn`` returned)."""
    seen, result = record_syncs(fn)
    return len(seen), result


def on_main_thread(sites: list[str]) -> list[str]:
    """The syncs of ``sites`` made on the thread that drives training."""
    main = threading.main_thread().name
    return [s for s in sites if s.startswith(f"{main}: ")]


@dataclass
class LoaderSyncs:
    per_batch: float          # every thread
    main_per_batch: float     # the training thread alone: what stalls the GPU's feed
    sites: dict[str, int]     # "thread: file:line" -> count


def epoch_under_way(loader) -> Iterator:
    """An iterator over ``loader``'s first epoch, past the batches that set things up."""
    loader.set_epoch(0)
    it = iter(loader)
    for _ in range(WARMUP_BATCHES):
        next(it)
    return it


def loader_syncs(loader, batches: int = 4) -> LoaderSyncs:
    """Host syncs per batch of ``loader`` once an epoch is under way."""
    it = epoch_under_way(loader)
    seen, _ = record_syncs(lambda: [next(it) for _ in range(batches)])
    return LoaderSyncs(len(seen) / batches, len(on_main_thread(seen)) / batches,
                       dict(Counter(seen)))


def locate_sync(loader, batches: int = 8) -> str | None:
    """The traceback of the first host sync of ``loader`` (None if it makes none).

    Under the "warn" mode a sync made by C++ code outside a Python call (a helper thread of a
    library) surfaces at the next call into PyTorch, so its reported line is not where it was
    made; the "error" mode raises at the sync itself, with the real stack.  The DataLoader
    passes an error of its pin-memory thread on to the training thread with that thread's
    traceback, which then names it.
    """
    import traceback

    it = epoch_under_way(loader)
    try:
        with sync_debug_mode("error"):
            for _ in range(batches):
                next(it)
    except RuntimeError as err:
        if "synchroniz" not in str(err):
            raise
        return "".join(traceback.format_exception(err))
    return None


def loop_syncs(model: nn.Module, batches: list, precision, optimizer=None,
               on_step: Callable | None = None) -> int:
    """Host syncs of one ``train_one_epoch`` call over ``batches`` (after a warm-up call)."""
    from ..train.loop import train_one_epoch
    from ..train.optim import create_optimizer

    optimizer = optimizer or create_optimizer(model)
    loss_fn = nn.CrossEntropyLoss()
    train_one_epoch(model, batches[:2], optimizer, precision, loss_fn)   # lazy state, autotune
    count, _ = count_syncs(lambda: train_one_epoch(model, batches, optimizer, precision, loss_fn,
                                                   on_step=on_step))
    return count


def expected_loop_syncs(steps: int, every: int) -> int:
    """What ``train_one_epoch`` may sync: one per progress interval, and the epoch's end
    (``synchronize`` plus reading the mean loss)."""
    return -(-steps // every) + 2
