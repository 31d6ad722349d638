"""The ``workers`` loader: DataLoader processes decode and augment, the device normalises.

(Named ``torchvision`` in an earlier release, after its first pipeline; that name still
selects it, with a note.)  Two pipelines, one contract:

* ``albumentations``, always, in a working install (albumentations and OpenCV are required
  dependencies): OpenCV decode and one albumentations transform per image
  (``albu_views.SpecView``: one affine warp + one brightness/contrast table, the same pixels
  as the ``cache-ram`` loader); workers hand over HWC uint8 batches ``(B, S, S, 3)``, so the
  batch is channels_last without a layout copy;
* ``torchvision``: libjpeg-turbo decode + ``transforms.v2`` on ``(3, S, S)`` uint8
  (:func:`build_transform`).  It serves only an install whose albumentations or OpenCV fails
  to import (said once), so training still runs there; tests hold it to the same views.

Either way normalisation, dtype and memory format happen on the device (``to_device_batch``),
which keeps worker output and host->device copies four times smaller than float32.
"""
from __future__ import annotations

import importlib

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler
from torchvision.transforms import v2

from ..data.augment import AugmentSpec
from ..data.imageio import ImageDecodeError, load_image
from ..data.table import Samples, csv_line
from ..utils.console import console
from .base import (Loader, LoaderOptions, augment_seed, epoch_order, normaliser_for, train_count,
                   to_device_batch)


_SAID: set[str] = set()   # fallback reasons already printed in this process


def build_transform(spec: AugmentSpec) -> v2.Compose | None:
    """uint8 ``(3, S, S)`` -> augmented uint8 ``(3, S, S)``; None when nothing is random."""
    d = spec.draws()
    if d.identity:
        return None
    ops = []
    if d.random_crop:
        ops.append(v2.RandomResizedCrop(spec.size, scale=d.crop_scale, ratio=d.crop_ratio,
                                        antialias=True))
    if d.hflip:
        ops.append(v2.RandomHorizontalFlip(d.hflip))
    if d.vflip:
        ops.append(v2.RandomVerticalFlip(d.vflip))
    if d.affine:
        # rotate and shift-scale-rotate share one affine warp: one interpolation, not two.
        # RandomAffine turns clockwise on screen (the spec: counter-clockwise), and its
        # translate range is symmetric: the widest bound is used
        shift = max(abs(d.shift[0]), abs(d.shift[1]))
        ops.append(v2.RandomAffine(degrees=(-d.angle[1], -d.angle[0]),
                                   translate=(shift, shift), scale=d.zoom,
                                   interpolation=v2.InterpolationMode.BILINEAR))
    if d.colour:
        # contrast, then brightness, in this order always: the other backends' one lookup table
        ops += [v2.ColorJitter(contrast=d.contrast), v2.ColorJitter(brightness=d.brightness)]
    return v2.Compose(ops) if ops else None


def pick_pipeline(requested: str = "auto") -> str:
    """``albumentations`` when it and OpenCV import, else ``torchvision`` (the reason said once)."""
    if requested == "torchvision":
        return "torchvision"
    try:
        importlib.import_module(f"{__package__}.albu_views")
    except Exception as err:   # a broken install can raise more than ImportError
        why = f"{type(err).__name__}: {err}"
        if requested == "albumentations":
            raise ValueError(f"the albumentations pipeline cannot start ({why})") from None
        if why not in _SAID:
            _SAID.add(why)
            console.print(f"[yellow]albumentations unavailable ({why}); the worker loader "
                          f"augments with torchvision transforms[/yellow]")
        return "torchvision"
    return "albumentations"


class ImageDataset(Dataset):
    """Rows -> ``(image, label)``: ``(S, S, 3)`` HWC with albumentations, else ``(3, S, S)``."""

    def __init__(self, samples: Samples, spec: AugmentSpec, pipeline: str, seed: int = 0):
        self.samples, self.spec, self.pipeline = samples, spec, pipeline
        self.seed, self.epoch = seed, None
        self.hwc = pipeline == "albumentations"
        if self.hwc:
            from .albu_views import build_views

            self.transform = build_views(spec, seed)
        else:
            self.transform = build_transform(spec)

    def __len__(self) -> int:
        return len(self.samples)

    def reseed(self, seed: int) -> None:
        """Give this worker process its own augmentation stream (torchvision uses torch's RNG)."""
        if self.hwc and self.transform is not None:
            self.transform.set_random_seed(seed % 2**32)

    def enter_epoch(self, epoch: int) -> None:
        """In a worker process: draw this epoch's views from (seed, epoch, worker) alone.

        A persistent worker's stream would otherwise run on across epochs, and a resumed
        run's fresh workers would draw epoch 1's views in the epoch they resume at.  (With no
        workers the views come from the main process's generators, which last.pt restores.)
        """
        from torch.utils.data import get_worker_info

        info = get_worker_info()
        if epoch == self.epoch or info is None:
            return
        self.epoch = epoch
        seed = int(np.random.SeedSequence([self.seed, epoch, info.id]).generate_state(1)[0])
        torch.manual_seed(seed)      # torchvision's transforms draw from torch's generator
        self.reseed(seed)

    def __getitem__(self, i):
        if isinstance(i, tuple):      # (row, epoch) from the training sampler
            i, epoch = i
            self.enter_epoch(epoch)
        try:
            image = self.load(self.samples.paths[i])
        except ImageDecodeError as err:
            # carried as data: raised here, a worker's error reaches the user wrapped in the
            # worker's traceback; the main process raises it (Unreadable.check)
            return Unreadable(f"{err} [{row_name(self.samples, i)}]"), -1
        return image, int(self.samples.labels[i])

    def load(self, path) -> torch.Tensor:
        if self.hwc:
            from .cv_augment import decode_rgb_cv2, resize_hwc

            image = resize_hwc(decode_rgb_cv2(path), self.spec.size)
            if self.transform is not None:
                image = self.transform(image=image)["image"]
            image = torch.from_numpy(np.ascontiguousarray(image))
        else:
            image = load_image(path, self.spec.size)
            if self.transform is not None:
                image = self.transform(image)
        return image


class Unreadable:
    """A row whose file could not be decoded, in place of its image (picklable)."""

    def __init__(self, message: str):
        self.message = message

    @staticmethod
    def check(images) -> None:
        if isinstance(images, Unreadable):
            raise ImageDecodeError(images.message)


def row_name(samples: Samples, i: int) -> str:
    """Where row ``i`` comes from: its CSV line, or the file alone for a folder of photos."""
    if samples.csv.suffix.lower() == ".csv":
        return f"{samples.csv.name} line {csv_line(samples.rows[i])}"
    return samples.images[i]


def init_worker(worker_id: int) -> None:
    """Seed the worker's augmentations from the loader's generator; keep OpenCV single-threaded."""
    from torch.utils.data import get_worker_info

    info = get_worker_info()
    if info.dataset.hwc:
        import cv2

        cv2.setNumThreads(1)   # the workers are the parallelism; nested threads only contend
    info.dataset.reseed(info.seed)


class EpochSampler(Sampler):
    """The base's training order (:func:`~fastleaf.loaders.base.epoch_order`) as a sampler."""

    def __init__(self, n: int, options: LoaderOptions, labels=None):
        self.n, self.options, self.labels = n, options, labels
        self.epoch = 0

    def __len__(self) -> int:
        return train_count(self.n, self.options)

    def __iter__(self):
        # the epoch travels with each row: persistent workers never see set_epoch
        return iter([(i, self.epoch) for i in
                     epoch_order(self.n, self.options, self.epoch, self.labels).tolist()])


def collate_uint8(batch):
    bad = next((image for image, _ in batch if isinstance(image, Unreadable)), None)
    if bad is not None:
        return bad, None
    images = torch.stack([b[0] for b in batch])
    labels = torch.tensor([b[1] for b in batch], dtype=torch.int64)
    return images, labels


class WorkerLoader(Loader):
    backend = "workers"

    def __init__(self, samples: Samples, spec: AugmentSpec, options: LoaderOptions,
                 pipeline: str = "auto"):
        super().__init__(samples, spec, options)
        self.pipeline = pick_pipeline(pipeline)
        seed = augment_seed(options)
        # training reads every row through the sampler; eval reads this shard's rows in order
        self.sampler = EpochSampler(len(samples), options, samples.labels) if self.training \
            else None
        self.dataset = ImageDataset(samples if self.training else samples.subset(self.rows),
                                    spec, self.pipeline, seed)
        workers = options.workers
        # workers seed their augmentations from this generator (once, as they are persistent)
        self.generator = torch.Generator().manual_seed(seed)
        self.loader = DataLoader(
            self.dataset, batch_size=options.batch_size, sampler=self.sampler, shuffle=False,
            num_workers=workers, collate_fn=collate_uint8,
            pin_memory=options.device.type == "cuda", drop_last=False,
            persistent_workers=workers > 0, prefetch_factor=4 if workers > 0 else None,
            generator=self.generator, worker_init_fn=init_worker if workers > 0 else None)
        self.normalise = normaliser_for(spec, options.device)

    def set_epoch(self, epoch: int) -> None:
        super().set_epoch(epoch)
        if self.sampler is not None:
            self.sampler.epoch = epoch

    def __iter__(self):
        for images, labels in self.loader:
            Unreadable.check(images)
            if self.dataset.hwc:
                images = images.permute(0, 3, 1, 2)   # (B, 3, S, S) view of NHWC memory
            yield to_device_batch(images, labels, self.normalise, self.options)
