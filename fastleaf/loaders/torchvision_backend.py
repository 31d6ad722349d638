"""torchvision backend: libjpeg-turbo decode + ``transforms.v2`` on uint8 in DataLoader workers.

Workers hand over uint8 batches; normalisation, dtype and memory format happen on the device
(``to_device_batch``), which keeps worker output and host->device copies four times smaller.
"""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler
from torchvision.transforms import v2

from ..data.augment import AugmentSpec
from ..data.imageio import load_image
from ..data.table import Samples
from .base import Loader, LoaderOptions, Shard, norm_tensors, shard_range, to_device_batch


def build_transform(spec: AugmentSpec) -> v2.Compose | None:
    """uint8 ``(3, S, S)`` -> augmented uint8 ``(3, S, S)``; None when nothing is random."""
    if not spec.train:
        return None
    ops = []
    if spec.random_crop:
        ops.append(v2.RandomResizedCrop(spec.size, scale=spec.crop_scale, ratio=spec.crop_ratio,
                                        antialias=True))
    if spec.hflip:
        ops.append(v2.RandomHorizontalFlip(spec.hflip))
    if spec.vflip:
        ops.append(v2.RandomVerticalFlip(spec.vflip))
    if spec.rotate_deg or spec.affine:
        # rotate and shift-scale-rotate share one affine warp: one interpolation, not two
        ops.append(v2.RandomAffine(degrees=spec.rotate_deg, translate=(spec.shift, spec.shift),
                                   scale=(1 - spec.scale, 1 + spec.scale)))
    if spec.brightness or spec.contrast:
        ops.append(v2.ColorJitter(brightness=spec.brightness, contrast=spec.contrast))
    return v2.Compose(ops) if ops else None


class ImageDataset(Dataset):
    def __init__(self, samples: Samples, spec: AugmentSpec):
        self.samples = samples
        self.spec = spec
        self.transform = build_transform(spec)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        image = load_image(self.samples.paths[i], self.spec.size)
        if self.transform is not None:
            image = self.transform(image)
        return image, int(self.samples.labels[i])


class EpochSampler(Sampler):
    """Seeded per-epoch shuffle, split across shards (each shard gets the same count)."""

    def __init__(self, n: int, seed: int, shard: Shard, drop_last: bool, batch_size: int):
        self.n, self.seed, self.shard = n, seed, shard
        per_shard = -(-n // shard.count)
        if drop_last:
            per_shard = max(batch_size, per_shard // batch_size * batch_size)
        self.per_shard = per_shard
        self.epoch = 0

    def __len__(self) -> int:
        return self.per_shard

    def __iter__(self):
        rng = np.random.default_rng((self.seed, self.epoch))
        order = rng.permutation(self.n)
        total = self.per_shard * self.shard.count
        order = np.resize(order, total)           # wrap around so every shard is full
        return iter(order[self.shard.index::self.shard.count][: self.per_shard].tolist())


def collate_uint8(batch):
    images = torch.stack([b[0] for b in batch])
    labels = torch.tensor([b[1] for b in batch], dtype=torch.int64)
    return images, labels


class TorchvisionLoader(Loader):
    backend = "torchvision"

    def __init__(self, samples: Samples, spec: AugmentSpec, options: LoaderOptions):
        self.samples, self.spec, self.options = samples, spec, options
        self.training = spec.train
        self.epoch = 0
        if spec.train:
            self.sampler = EpochSampler(len(samples), options.seed, options.shard,
                                        options.drop_last, options.batch_size)
            dataset = ImageDataset(samples, spec)
            self.num_samples = len(self.sampler)
        else:
            start, stop = shard_range(len(samples), options.shard)
            self.sampler = None
            dataset = ImageDataset(samples.subset(np.arange(start, stop)), spec)
            self.num_samples = stop - start
        self.dataset = dataset
        workers = options.workers
        # workers seed their augmentations from this generator (once, as they are persistent)
        self.generator = torch.Generator().manual_seed(options.seed * 7919 + options.shard.index)
        self.loader = DataLoader(
            dataset, batch_size=options.batch_size, sampler=self.sampler, shuffle=False,
            num_workers=workers, collate_fn=collate_uint8,
            pin_memory=options.device.type == "cuda", drop_last=False,
            persistent_workers=workers > 0, prefetch_factor=4 if workers > 0 else None,
            generator=self.generator)
        self.mean, self.std = norm_tensors(spec.mean, spec.std, options.device)

    def __len__(self) -> int:
        return len(self.loader)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        if self.sampler is not None:
            self.sampler.epoch = epoch

    def __iter__(self):
        for images, labels in self.loader:
            yield to_device_batch(images, labels, self.mean, self.std, self.options)
