"""The loader contract: the one seam where data backends differ.

Every backend returns a :class:`Loader` that

* iterates ``(images, labels)`` already on the target device: images ``(B, 3, H, W)`` float,
  normalised, in channels_last memory format when asked; labels ``(B,)`` int64 (-1 for test rows);
* knows ``num_samples`` and ``len()`` (batches); for eval/test it yields every row exactly once,
  in :class:`~fastleaf.data.table.Samples` order;
* takes ``set_epoch(n)`` so shuffling is reproducible and differs per epoch and per shard.

The rows each shard reads, and in which order, are decided here (``epoch_order``,
``shard_range``, ``train_count``), so every backend that follows the base order reads the same
rows in the same order for one seed, epoch and shard; DALI's reader shuffles with its own
generator but keeps the base's sizes.  The training loop, evaluation, prediction and the bench
only see this interface.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..utils.device import default_workers

if TYPE_CHECKING:
    from ..data.augment import AugmentSpec
    from ..data.batch_augment import Normaliser
    from ..data.table import Samples


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
    # None: the device's default (utils.device.default_workers), as the config's None is;
    # 0 reads in the calling process
    workers: int | None = None
    seed: int = 0
    shard: Shard = Shard()
    drop_last: bool = False       # training only; eval/test never drop rows
    dtype: torch.dtype = torch.float32   # image dtype handed to the model
    # training: draw each epoch's rows with replacement, every class equally likely
    balanced: bool = False

    def __post_init__(self):
        if self.workers is None:
            object.__setattr__(self, "workers", default_workers(self.device))   # frozen: set once


def shard_range(n: int, shard: Shard) -> tuple[int, int]:
    """Contiguous [start, stop) rows of shard ``shard.index`` for eval (order kept)."""
    per = -(-n // shard.count)
    return min(n, shard.index * per), min(n, (shard.index + 1) * per)


def train_count(n: int, options: LoaderOptions) -> int:
    """Rows one shard reads in a training epoch: the same on every shard, so every rank runs
    the same number of steps.  With ``drop_last`` whole batches only, at least one (a set
    smaller than a batch wraps around to fill it)."""
    per_shard = -(-n // options.shard.count)
    if options.drop_last:
        per_shard = max(options.batch_size, per_shard // options.batch_size * options.batch_size)
    return per_shard


def epoch_order(n: int, options: LoaderOptions, epoch: int,
                labels: np.ndarray | None = None) -> np.ndarray:
    """This shard's rows for a training epoch, ``(train_count,)`` int64.

    One permutation of all ``n`` rows per (seed, epoch), the same on every shard, wrapped
    around until each shard is full; shard ``i`` takes every ``count``-th row from ``i``, so
    shards are disjoint whenever no row had to be repeated.  With ``options.balanced`` (and
    the rows' ``labels``) the epoch is ``n`` draws with replacement instead, each row weighted
    by one over its class's count: every class is drawn equally often on average, the same
    draws on every shard (one generator per seed and epoch), cut as above.
    """
    per_shard, count = train_count(n, options), options.shard.count
    rng = np.random.default_rng((options.seed, epoch))
    if options.balanced and labels is not None:
        order = rng.choice(n, size=n, replace=True, p=balanced_weights(labels))
    else:
        order = rng.permutation(n)
    order = np.resize(order, per_shard * count)
    return order[options.shard.index::count].astype(np.int64, copy=False)


def balanced_weights(labels: np.ndarray) -> np.ndarray:
    """Each row's draw probability: one over its class's count, normalised (sums to 1)."""
    labels = np.asarray(labels)
    _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    weights = 1.0 / counts[inverse]
    return weights / weights.sum()


def augment_seed(options: LoaderOptions) -> int:
    """Seed of a shard's augmentation stream: different per shard, fixed by the run's seed."""
    return options.seed * 7919 + options.shard.index


class Loader:
    """Base class: holds the rows and sizes; subclasses implement ``__iter__``.

    ``__init__`` sets ``samples``, ``spec``, ``options``, ``training``, ``epoch``,
    ``num_samples`` and ``rows`` (this shard's eval rows; None when training, where
    :meth:`order` shuffles per epoch).
    """

    backend = "base"
    # why the asked-for backend was not used (this loader is its stand-in); None when it was
    fallback: str | None = None

    def __init__(self, samples: Samples, spec: AugmentSpec, options: LoaderOptions):
        self.samples, self.spec, self.options = samples, spec, options
        self.training = spec.train
        self.epoch = 0
        if self.training:
            self.rows = None
            self.num_samples = train_count(len(samples), options)
        else:
            self.rows = np.arange(*shard_range(len(samples), options.shard))
            self.num_samples = len(self.rows)

    def __len__(self) -> int:
        return -(-self.num_samples // self.options.batch_size)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def order(self) -> np.ndarray:
        """Rows of this epoch in reading order: shuffled per (seed, epoch) and cut per shard
        when training, else this shard's rows in table order."""
        if self.training:
            return epoch_order(len(self.samples), self.options, self.epoch, self.samples.labels)
        return self.rows

    def __iter__(self):
        raise NotImplementedError


def to_device_batch(images: torch.Tensor, labels: torch.Tensor, normaliser,
                    options: LoaderOptions) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 ``(B, 3, H, W)`` on the host (NCHW, or an NHWC batch seen as NCHW) -> normalised
    on the device, in the model's dtype and memory format (one fused pass).

    Moving uint8 and normalising on the device costs a quarter of the transfer of float32.
    """
    device = options.device
    non_blocking = device.type == "cuda"     # the DataLoader pins its batches for this
    images = images.to(device, non_blocking=non_blocking)
    labels = labels.to(device, non_blocking=non_blocking)
    return normaliser(images, channels_last=options.channels_last, dtype=options.dtype), labels


def normaliser_for(spec: "AugmentSpec", device) -> "Normaliser":
    """The one fused normalise of a loader, its constants on ``device`` once."""
    from ..data.batch_augment import Normaliser

    return Normaliser(*norm_tensors(spec.mean, spec.std, device))


def norm_tensors(mean, std, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean/std in 0..255 units, shaped ``(1, 3, 1, 1)`` for broadcasting."""
    m = torch.tensor([v * 255.0 for v in mean], device=device).view(1, 3, 1, 1)
    s = torch.tensor([v * 255.0 for v in std], device=device).view(1, 3, 1, 1)
    return m, s
