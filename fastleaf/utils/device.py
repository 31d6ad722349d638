"""Device choice, placement checks, per-device speed settings and seeding."""
from __future__ import annotations

import os
import random

import numpy as np
import torch

from ..errors import FastleafError

MAX_WORKERS_CPU = 4    # on the CPU, loader workers compete with the model's own threads
MAX_WORKERS_GPU = 32


def resolve_device(name: str = "auto") -> torch.device:
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N`` -> a device; CUDA always with its index.

    ``torch.device("cuda")`` has no index while every tensor on it reports ``cuda:0`` (the
    current device), so comparisons between the two would be wrong; the index is fixed here.
    """
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise FastleafError(f"--device {name!r}: not a device; use auto, cpu, cuda or cuda:N") \
            from None
    if device.type != "cuda":
        return device
    if not torch.cuda.is_available():
        raise FastleafError(f"--device {name}: no CUDA device is usable here; use --device cpu")
    index = torch.cuda.current_device() if device.index is None else device.index
    if index >= torch.cuda.device_count():
        raise FastleafError(f"--device {name}: only {torch.cuda.device_count()} CUDA "
                            f"device(s) here")
    return torch.device("cuda", index)


def same_device(a: torch.device, b: torch.device) -> bool:
    """Whether two devices are the same place: ``cuda`` without an index means the current one."""
    a, b = torch.device(a), torch.device(b)
    if a.type != b.type:
        return False
    if a.type != "cuda" or a.index == b.index:
        return True
    current = torch.cuda.current_device()
    return (current if a.index is None else a.index) == (current if b.index is None else b.index)


def configure_device(device: torch.device) -> None:
    """Make ``device`` current and switch on the CUDA speed settings.

    cuDNN's autotuner pays off because training batches have one shape (the ragged last batch
    is dropped); TF32 matmuls ("high") are what autocast leaves in float32.  The CPU is left
    as it is: "high" would let oneDNN run float32 matmuls in bf16 there.
    """
    if device.type != "cuda":
        return
    torch.cuda.set_device(device)
    torch.backends.cudnn.benchmark = True
    torch.set_float32_matmul_precision("high")


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:     # not on Linux
        return os.cpu_count() or 1


def default_workers(device: torch.device | str = "cpu") -> int:
    """Loader workers / decode threads for one process training on ``device``.

    CPU: a few, as they share the cores with the model.  CUDA: the cores of this process's
    share of the machine (cores / processes per node), less one for the training loop itself.
    """
    cores = usable_cores()
    if torch.device(device).type != "cuda":
        return max(1, min(MAX_WORKERS_CPU, cores))
    procs = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    return max(1, min(MAX_WORKERS_GPU, cores // max(1, procs) - 1))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
