"""Loader factory: ``create_loader(samples, spec, options, backend=...)``.

Backends are imported lazily, so DALI is only imported when it is asked for.
"""
from __future__ import annotations

import importlib

from ..data.augment import AugmentSpec
from ..data.table import Samples
from .base import Loader, LoaderOptions, Shard

# backend name -> "module:Class"; every class takes (samples, spec, options)
BACKENDS = {
    "torchvision": "fastleaf.loaders.torchvision_backend:TorchvisionLoader",
}


def resolve_backend(name: str, device) -> tuple[str, str]:
    """(backend, why) for a requested name; ``auto`` picks the fastest usable one."""
    if name != "auto":
        if name not in BACKENDS:
            raise ValueError(f"unknown loader {name!r}; choose from auto, {', '.join(BACKENDS)}")
        return name, "asked for"
    return "torchvision", "the only backend available"


def create_loader(samples: Samples, spec: AugmentSpec, options: LoaderOptions,
                  backend: str = "torchvision") -> Loader:
    """Build a loader that yields normalised device batches for ``samples``.

    Args:
        samples: rows to read (eval/test keep this order, each row exactly once).
        spec: augmentations (``spec.train`` decides shuffling and random views).
        options: batch size, device, memory format, workers, seed, shard.
        backend: a key of ``BACKENDS`` (already resolved, not ``auto``).
    """
    module_name, class_name = BACKENDS[backend].split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls(samples, spec, options)


__all__ = ["BACKENDS", "Loader", "LoaderOptions", "Shard", "create_loader", "resolve_backend"]
