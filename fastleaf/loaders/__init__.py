"""Loader factory: ``create_loader(samples, spec, options, backend=...)``.

Backends are imported lazily, in :func:`create_loader` alone, so DALI is only imported when it
is asked for; their names are :data:`fastleaf.vocab.BACKENDS`.
"""
from __future__ import annotations

import torch

from ..data.augment import AugmentSpec
from ..data.table import Samples
from ..errors import UsageError
from ..utils.deprecation import current_name
from ..vocab import BACKENDS, LOADER_ALIASES
from .base import Loader, LoaderOptions, Shard


def resolve_backend(name: str, device, images: int = 0, size: int = 224) -> tuple[str, str]:
    """(backend, why) for a requested name; ``auto`` gives its first choice (``auto_choices``).

    ``dali`` where DALI cannot import raises ``DaliUnavailable`` (a one-line error saying how to
    fall back); on a CPU device it runs DALI's CPU-only pipeline.
    """
    cuda = torch.device(device).type == "cuda"
    name = current_name(name, LOADER_ALIASES, "loader")
    if name == "dali":
        from .dali_backend import require_dali

        require_dali()
        return "dali", "asked for" + ("" if cuda else "; CPU-only pipeline, no CUDA device")
    if name != "auto":
        if name not in BACKENDS:
            raise UsageError(f"unknown loader {name!r}; choose from auto, {', '.join(BACKENDS)}")
        return name, "asked for"
    return auto_choices(torch.device(device), images, size)[0]


def auto_choices(device: torch.device, images: int = 0, size: int = 224) -> list[tuple[str, str]]:
    """What ``auto`` tries, best first, each with its reason; the worker loader always last.

    CUDA: cache-gpu when the decoded set fits in free GPU memory (on an H200, ResNet-18 trained
    from it at 0.96x of synthetic batches: each image decoded once, augmented on the GPU), else
    DALI (decodes every epoch, on the GPU), else decoding in worker processes (2,449 img/s
    against cache-gpu's 12,133 there).  CPU: cache-ram when the set fits in free RAM (1.7x
    streaming on a 2-core CPU), else the workers.  Callers that read each image once
    (prediction) pass no ``images``: no cache pays off for one pass.
    """
    choices = []
    if device.type == "cuda":
        from .cache_backend import available_gpu_bytes
        from .dali_backend import dali_import_error

        if images:
            choices += fitting_cache("cache-gpu", images, size, available_gpu_bytes(device),
                                     "GPU memory", "decoded once, augmented on the GPU")
        reason = dali_import_error()
        if reason is None:
            choices.append(("dali", "auto: CUDA device and DALI available"
                            + ("" if not images or choices else "; the decoded set does not "
                               "fit in GPU memory")))
        last = (f"auto: DALI unavailable ({reason})" if reason else "auto: after DALI")
    else:
        if images:
            from .cache_backend import available_ram_bytes

            choices += fitting_cache("cache-ram", images, size, available_ram_bytes(), "RAM",
                                     "decoding once beats decoding every epoch")
        last = "auto: no CUDA device for DALI's GPU pipeline"
    if images and not choices:
        last += f"; {images} decoded images do not fit in memory, decoding in workers"
    return choices + [("workers", last)]


def fitting_cache(cache: str, images: int, size: int, free: int, memory: str,
                  gain: str) -> list[tuple[str, str]]:
    """``[(cache, why)]`` when ``images`` decoded images fit in ``free`` bytes, else ``[]``."""
    from .cache_backend import cache_bytes, fits

    need = cache_bytes(images, size)
    if not fits(need, free):
        return []
    return [(cache, f"auto: {images} decoded images ({need / 2**30:.2f} GiB) fit in free "
                    f"{memory} ({free / 2**30:.1f} GiB): {gain}")]


def training_batch(batch_size: int, rows: int, size: int, device,
                   free: int | None = None) -> tuple[int, str | None]:
    """(the training batch, a note when it was lowered) for ``rows`` training images per process.

    A batch above ``rows`` would only repeat the same images into one step, so it is lowered
    to ``rows``; a batch whose images alone (uint8 and float32 copies) exceed the caches'
    headroom of the free memory (``free``: measured on ``device`` when None) is refused
    before anything is allocated.
    """
    from .cache_backend import available_gpu_bytes, available_ram_bytes, cache_bytes, fits

    note = None
    if batch_size > rows:
        note = (f"--batch-size {batch_size} is more than the {rows} training images per "
                f"process; training with batches of {rows}")
        batch_size = rows
    if free is None:
        device = torch.device(device)
        free = available_gpu_bytes(device) if device.type == "cuda" else available_ram_bytes()
    need = cache_bytes(batch_size, size) * 5           # 1 byte (uint8) + 4 (float32) a value
    if not fits(need, free):
        raise UsageError(f"--batch-size {batch_size} at --img-size {size} needs "
                         f"{need / 2**30:.1f} GiB for its images alone, more than the free "
                         f"memory allows ({free / 2**30:.1f} GiB); use a smaller --batch-size")
    return batch_size, note


def create_loader(samples: Samples, spec: AugmentSpec, options: LoaderOptions,
                  backend: str = "workers") -> Loader:
    """Build a loader that yields normalised device batches for ``samples``.

    Args:
        samples: rows to read (eval/test keep this order, each row exactly once).
        spec: augmentations (``spec.train`` decides shuffling and random views).
        options: batch size, device, memory format, workers, seed, shard.
        backend: one of :data:`fastleaf.vocab.BACKENDS` (already resolved, not ``auto``).
    """
    # each class or factory takes (samples, spec, options)
    if backend == "workers":
        from .workers_backend import WorkerLoader as build
    elif backend == "dali":
        from .dali_backend import DaliLoader as build
    elif backend == "cache-ram":
        # decode-once caches: factories that fall back (with a message) when the set does not fit
        from .cache_backend import ram_cache as build
    elif backend == "cache-gpu":
        from .cache_backend import gpu_cache as build
    elif backend == "synthetic":
        from .synthetic import SyntheticLoader as build
    else:
        raise UsageError(f"unknown loader {backend!r}; choose from {', '.join(BACKENDS)}")
    return build(samples, spec, options)


def create_auto_loader(samples: Samples, spec: AugmentSpec, options: LoaderOptions,
                       choices) -> Loader:
    """A loader that uses the first of ``choices`` (a :class:`fallback.Choices`, shared by a
    run's loaders) that builds and delivers a batch; see :mod:`fastleaf.loaders.fallback`."""
    from .fallback import FallbackLoader

    return FallbackLoader(samples, spec, options, choices, create_loader)


__all__ = ["Loader", "LoaderOptions", "Shard", "auto_choices", "create_auto_loader",
           "create_loader", "resolve_backend"]
