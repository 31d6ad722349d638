"""Data-parallel plumbing on PyTorch's own engine (torchrun + DistributedDataParallel).

    torchrun --nproc_per_node=2 -m fastleaf train --data DIR --model cnn --device cpu

torchrun sets RANK / WORLD_SIZE / LOCAL_RANK; NCCL is used on GPUs, gloo on the CPU.  Only rank 0
writes files and logs.  Evaluation shards are contiguous, so gathering them in rank order gives
back the validation split in its original order: metrics equal a single-process evaluation.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

import torch
import torch.distributed as dist

from ..errors import UsageError
from ..loaders.base import Shard


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    group: bool = False       # a process group is up (torchrun), even with one process

    @property
    def enabled(self) -> bool:
        return self.group or self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def shard(self) -> Shard:
        return Shard(self.rank, self.world)


def launched_by_torchrun() -> bool:
    # torchrun sets both, also for one process: that one then runs the DDP path as well
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def init_distributed(device_name: str) -> tuple[DistInfo, str]:
    """Join the process group torchrun set up; returns (info, device name for this rank)."""
    if not launched_by_torchrun():
        return DistInfo(), device_name
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device_name.startswith("cuda") or (device_name == "auto" and torch.cuda.is_available())
    if use_cuda:
        torch.cuda.set_device(local_rank)
        device_name = f"cuda:{local_rank}"
    else:
        device_name = "cpu"
    if not dist.is_initialized():
        backend = "nccl" if use_cuda else "gloo"
        store = attempt_store(world)
        if store is None:
            dist.init_process_group(backend=backend)
        else:
            dist.init_process_group(backend=backend, store=store, rank=rank, world_size=world)
    return DistInfo(rank, world, local_rank, group=True), device_name


def attempt_store(world: int):
    """The process group's store for a torchrun worker on one machine: torchrun's own store,
    with a key prefix for each restart; None where the default ``env://`` store is right.

    torchrun keeps one store server for every rendezvous round and its workers' default store
    adds no prefix per attempt, so after a restart (``--max-restarts``) the new ranks can read
    the dead ranks' addresses and the process group never forms ("Connection refused", or a
    hang in gloo).  On one machine every worker has the same TORCHELASTIC_RESTART_COUNT, so it
    separates the attempts; across machines the counts differ per node and this is left to
    torchrun (TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1 gives each round a fresh store there).
    """
    if os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True":
        return None
    if int(os.environ.get("LOCAL_WORLD_SIZE", "-1")) != world:
        return None
    from torch.distributed.constants import default_pg_timeout

    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), world,
                          is_master=False, timeout=default_pg_timeout)
    return dist.PrefixStore(f"fastleaf/attempt_{attempt}", store)


def cleanup_distributed() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(values: list[float], info: DistInfo, device: torch.device) -> list[float]:
    if not info.enabled:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def gather_in_rank_order(tensor: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Concatenate each rank's (N_r, ...) CPU tensor in rank order (shard sizes may differ)."""
    if not info.enabled:
        return tensor
    parts = [None] * info.world
    dist.all_gather_object(parts, tensor.cpu())
    return torch.cat(parts)


def broadcast_flag(flag: bool, info: DistInfo, device: torch.device) -> bool:
    """True on every rank when any rank raised the flag (e.g. a stop signal)."""
    if not info.enabled:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


class AgreedStop:
    """A stop flag every rank agrees on, for ``should_stop`` of the training loop.

    Each agreement is a collective and a host sync, so the ranks ask every ``every`` steps
    (all at the same steps, as they run equal batch counts); :meth:`settle` gives the final
    word after the epoch, when a signal came after the last agreement.  One process: the local
    flag, read at every step (no collective to save).
    """

    def __init__(self, local: Callable[[], bool], info: DistInfo, device: torch.device,
                 every: int = 10):
        self.local, self.info, self.device, self.every = local, info, device, every
        self.calls = 0
        self.agreed = False

    def __call__(self) -> bool:
        if not self.agreed:
            self.calls += 1
            if not self.info.enabled:
                self.agreed = self.local()
            elif self.calls % self.every == 0:
                self.agreed = broadcast_flag(self.local(), self.info, self.device)
        return self.agreed

    def settle(self) -> bool:
        """Call on every rank once the epoch's loop has ended: whether all of them stop."""
        if not self.agreed:
            self.agreed = broadcast_flag(self.local(), self.info, self.device)
        return self.agreed


def sync_buffers(model: torch.nn.Module, info: DistInfo) -> None:
    """Give every rank rank 0's buffers (BN running stats drift apart in the last local step)."""
    if not info.enabled:
        return
    for buffer in model.buffers():
        dist.broadcast(buffer, src=0)


def check_sync_bn(sync_bn: bool, info: DistInfo, device: torch.device) -> None:
    """DDP runs SyncBatchNorm on GPUs only: say so before any data is read."""
    if sync_bn and info.enabled and device.type != "cuda":
        raise UsageError("--sync-bn needs CUDA devices (DDP runs SyncBatchNorm on GPUs only); "
                         "on the CPU leave it out: each process keeps its own norm statistics")


def wrap_ddp(model: torch.nn.Module, info: DistInfo, device: torch.device, sync_bn: bool,
             find_unused: bool = False):
    """SyncBatchNorm (optional) then DistributedDataParallel; the caller keeps the raw model.

    ``find_unused``: some parameters will stop needing gradients for a while (a frozen
    backbone); DDP then looks for them in each step's graph instead of waiting for their
    gradients forever, at the cost of that search."""
    if not info.enabled:
        return model
    from torch.nn.parallel import DistributedDataParallel

    if sync_bn:
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids, find_unused_parameters=find_unused)
