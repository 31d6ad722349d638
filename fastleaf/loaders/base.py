"""The loader contract: the one seam where data backends differ.

Every backend returns a :class:`Loader` that

* iterates ``(images, labels)`` already on the target device: images ``(B, 3, H, W)`` float,
  normalised, in channels_last memory format when asked; labels ``(B,)`` int64 (-1 for test rows);
* knows ``num_samples`` and ``len()`` (batches); for eval/test it yields every row exactly once,
  in :class:`~fastleaf.data.table.Samples` order;
* takes ``set_epoch(n)`` so shuffling is reproducible and differs per epoch and per shard.

The training loop, evaluation, prediction and the bench only see this interface.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Shard:
    """Which slice of the data this process reads in data-parallel training."""

    index: int = 0
    count: int = 1


@dataclass(frozen=True)
class LoaderOptions:
    """Everything a backend needs besides the samples and the augmentation spec."""

    batch_size: int = 50
    device: torch.device = torch.device("cpu")
    channels_last: bool = False
    workers: int = 2
    seed: int = 0
    shard: Shard = Shard()
    drop_last: bool = False       # training only; eval/test never drop rows
    dtype: torch.dtype = torch.float32   # image dtype handed to the model


class Loader:
    """Base class: subclasses implement ``_batches`` (device tensors) and sizes."""

    backend = "base"
    training = False
    num_samples = 0

    def __len__(self) -> int:
        raise NotImplementedError

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        raise NotImplementedError

    def describe(self) -> str:
        return f"{self.backend} loader, {self.num_samples} images, {len(self)} batches"


def shard_range(n: int, shard: Shard) -> tuple[int, int]:
    """Contiguous [start, stop) rows of shard ``shard.index`` for eval (order kept)."""
    per = -(-n // shard.count)
    return min(n, shard.index * per), min(n, (shard.index + 1) * per)


def to_device_batch(images: torch.Tensor, labels: torch.Tensor, mean: torch.Tensor,
                    std: torch.Tensor, options: LoaderOptions) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 ``(B, 3, H, W)`` on the host (NCHW, or an NHWC batch seen as NCHW) -> normalised
    on the device, in the model's dtype and memory format (one fused pass).

    Moving uint8 and normalising on the device costs a quarter of the transfer of float32.
    """
    from ..data.batch_augment import normalise

    device = options.device
    non_blocking = device.type == "cuda"     # the DataLoader pins its batches for this
    images = images.to(device, non_blocking=non_blocking)
    labels = labels.to(device, non_blocking=non_blocking)
    return normalise(images, mean, std, channels_last=options.channels_last,
                     dtype=options.dtype), labels


def norm_tensors(mean, std, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean/std in 0..255 units, shaped ``(1, 3, 1, 1)`` for broadcasting."""
    m = torch.tensor([v * 255.0 for v in mean], device=device).view(1, 3, 1, 1)
    s = torch.tensor([v * 255.0 for v in std], device=device).view(1, 3, 1, 1)
    return m, s
