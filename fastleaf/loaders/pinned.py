"""Batches of a decoded host set on the GPU, gathered while the GPU works on the previous ones.

A background thread gathers each batch's rows into one of a few reused pinned buffers
(``index_select`` releases the GIL); the training thread only starts the asynchronous copy
and records an event after it.  The thread refills a buffer once its event has passed, so a
copy still in flight is never overwritten and no one waits for the GPU.

    for images in gather_batches(store, index, batch_size, torch.device("cuda", 0)):
        ...    # images (B, ...) uint8 on the GPU, in ``index`` order
"""
from __future__ import annotations

import queue
import threading
import time

import torch

from ..utils.device import same_device

DEPTH = 3            # buffers: one being copied, one ready, one being gathered
POLL_S = 1e-4        # how often the gathering thread looks at a buffer's copy event


def gather_batches(store: torch.Tensor, index: torch.Tensor, batch_size: int,
                   device: torch.device):
    """``store[index[i:i + batch_size]]`` on ``device`` for each batch, in order.

    Host store and CUDA device: through :class:`PinnedGather`; otherwise a plain gather.
    """
    if same_device(store.device, device):       # cache-gpu, or cache-ram on the CPU
        for start in range(0, len(index), batch_size):
            yield store.index_select(0, index[start:start + batch_size])
    elif store.is_cuda or device.type != "cuda":
        for start in range(0, len(index), batch_size):
            yield store.index_select(0, index[start:start + batch_size]).to(device)
    else:
        yield from PinnedGather(store, index, batch_size, device)


class PinnedGather:
    """Iterate ``store[index]`` batch by batch onto ``device`` (see the module docstring).

    Args:
        store: ``(N, ...)`` host tensor; index: ``(M,)`` int64 host rows into it.
        pin: pinned buffers (needs CUDA); off only to exercise the logic on a CPU.
    """

    def __init__(self, store: torch.Tensor, index: torch.Tensor, batch_size: int,
                 device: torch.device, depth: int = DEPTH, pin: bool = True):
        self.store, self.index, self.batch_size, self.device = store, index, batch_size, device
        shape = (min(batch_size, max(1, len(index))),) + tuple(store.shape[1:])
        self.buffers = [torch.empty(shape, dtype=store.dtype, pin_memory=pin)
                        for _ in range(depth)]
        self.fences: list = [None] * depth

    def fence(self):
        """An event after the copies queued so far (None on the CPU: copies are done)."""
        if self.device.type != "cuda":
            return None
        event = torch.cuda.Event()
        event.record(torch.cuda.current_stream(self.device))
        return event

    def fill(self, free: queue.Queue, ready: queue.Queue, stop: threading.Event) -> None:
        """The gathering thread: every batch into a free buffer, then onto ``ready``."""
        try:
            for start in range(0, len(self.index), self.batch_size):
                k = None
                while k is None:
                    if stop.is_set():
                        return
                    try:
                        k = free.get(timeout=0.05)
                    except queue.Empty:
                        pass
                fence = self.fences[k]
                while fence is not None and not fence.query():   # its copy is still running
                    if stop.is_set():
                        return
                    time.sleep(POLL_S)
                rows = self.index[start:start + self.batch_size]
                out = self.buffers[k][:len(rows)]
                torch.index_select(self.store, 0, rows, out=out)
                ready.put((k, out))
            ready.put(None)
        except BaseException as err:        # handed to the consumer, raised there
            ready.put(err)

    def __iter__(self):
        free, ready, stop = queue.Queue(), queue.Queue(), threading.Event()
        for k in range(len(self.buffers)):
            free.put(k)
        worker = threading.Thread(target=self.fill, args=(free, ready, stop), daemon=True,
                                  name="fastleaf-pinned-gather")
        worker.start()
        try:
            while (item := ready.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                k, host = item
                batch = host.to(self.device, non_blocking=True)
                self.fences[k] = self.fence()
                yield batch
                free.put(k)        # only now: a CPU consumer may still read the buffer itself
        finally:
            stop.set()
            worker.join()
