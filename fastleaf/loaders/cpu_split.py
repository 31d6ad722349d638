"""How a run shares the CPU cores between the loader and the model's torch threads.

Decode/augment workers and oneDNN's threads fight when they outnumber the cores: a preempted
torch thread stalls its whole parallel region.  ``plan_split`` picks both numbers together::

    split = plan_split(torch.device("cpu"), "workers")
    split.apply()                   # torch.set_num_threads(split.threads)
    print(split.describe())         # "CPU split: 1 loader worker + 2 torch threads on 2 cores"

Rule: one loader worker per ``CORES_PER_WORKER`` cores (at least one), since one OpenCV worker
renders several hundred views a second and the CNN uses ~4 core-ms per image.  On small machines
(fewer than ``MIN_MODEL_CORES`` left) the model keeps every core and the light loader interleaves
with it: setting a core aside would halve the model.  Larger machines set the loader's cores
aside.  On CUDA the model runs on the GPU and only the worker count is chosen.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..utils.device import default_workers, usable_cores

CORES_PER_WORKER = 4
MIN_MODEL_CORES = 4


@dataclass(frozen=True)
class CpuSplit:
    workers: int             # loader worker processes / render or DALI threads
    threads: int | None      # torch intra-op threads; None leaves torch's own setting
    cores: int
    why: str

    def apply(self) -> None:
        if self.threads is not None and torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)

    def describe(self) -> str:
        threads = torch.get_num_threads() if self.threads is None else self.threads
        return (f"CPU split: {self.workers} loader worker{'s' * (self.workers != 1)} + "
                f"{threads} torch thread{'s' * (threads != 1)} on {self.cores} cores "
                f"({self.why})")


def plan_split(device: torch.device, backend: str, workers: int | None = None,
               threads: int | None = None, cores: int | None = None) -> CpuSplit:
    """Loader workers and torch threads for ``backend`` feeding a model on ``device``.

    Args:
        workers, threads: values asked for (``--workers``, ``--threads``); kept as given.
        cores: the cores to share (default: this process's affinity mask).
    """
    cores = cores or usable_cores()
    if torch.device(device).type != "cpu":
        # the GPU computes: the loader may have this process's share of the cores
        w = default_workers(device) if workers is None else workers
        return CpuSplit(w, threads, cores, "the model runs on the GPU")
    if workers is None:
        # the synthetic loader makes its batches in the main process
        workers = 0 if backend == "synthetic" else max(1, cores // CORES_PER_WORKER)
    why = "asked for" if threads is not None else ""
    if threads is None:
        left = cores - workers
        if left >= MIN_MODEL_CORES:
            threads, why = left, "loader cores set aside"
        else:
            threads, why = cores, "small machine: the model keeps every core"
    return CpuSplit(workers, max(1, threads), cores, why)
