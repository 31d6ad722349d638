"""Decode-once caches: every image is decoded once into one uint8 tensor, views are built per batch.

``cache-ram`` keeps ``(N, 3, S, S)`` uint8 in host memory (Classify Leaves at 224 px: 18,353 x
224 x 224 x 3 bytes = 2.8 GB) and per batch does index -> device -> batched augmentations
(:mod:`fastleaf.data.batch_augment`) -> normalise -> channels_last.  ``cache-gpu`` keeps the same
tensor on the GPU and builds the views there, so no image crosses the bus after the first decode.
On the CPU, ``cache-ram`` renders training views with OpenCV instead (``cv_augment.BatchViews``:
one warp + one lookup table per image, in a thread pool, one batch ahead of the model).

    loader = create_loader(table.train, spec, options, backend="cache-ram")

Files repeated in ``samples`` (``Samples.repeat``) are decoded once.  When the decoded set does
not fit, ``cache-gpu`` falls back to ``cache-ram`` and ``cache-ram`` to the workers backend,
each with a message; ``cache-gpu`` without a CUDA device is an error naming ``cache-ram``.
"""
from __future__ import annotations

import hashlib
import os
import time
import weakref
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from ..data.augment import AugmentSpec
from ..data.batch_augment import BatchAugment
from ..data.imageio import ImageDecodeError, load_image
from ..data.table import Samples, csv_line
from ..errors import UsageError
from ..utils.console import console, tracked
from .base import Loader, LoaderOptions, normaliser_for
from .pinned import gather_batches

HEADROOM = 0.8          # use at most this share of the free memory for the decoded set
DECODE_CHUNK = 256      # images decoded between copies into the cache (bounds extra memory)

# decoded sets shared by loaders over the same files (train and eval views of one split);
# weak values: a set lives exactly as long as some loader holds it
_DECODED: "weakref.WeakValueDictionary[tuple, torch.Tensor]" = weakref.WeakValueDictionary()
_SAID: set[str] = set()   # reasons already printed in this process


def available_ram_bytes() -> int:
    """Free host memory: MemAvailable from /proc/meminfo, else free pages from sysconf."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def fits(need: int, free: int) -> bool:
    """The caches' one rule, for ``auto`` and for the caches' own fallbacks alike: the decoded
    set may take at most ``HEADROOM`` of the free memory."""
    return need <= HEADROOM * free


def available_gpu_bytes(device: torch.device) -> int:
    """Free memory on a CUDA device (``torch.cuda.mem_get_info``)."""
    return torch.cuda.mem_get_info(device)[0]


def cache_bytes(num_images: int, size: int) -> int:
    """Bytes of ``num_images`` decoded RGB uint8 images of ``size`` x ``size``."""
    return num_images * 3 * size * size


def unique_files(samples: Samples) -> tuple[list, np.ndarray]:
    """(distinct paths in first-seen order, ``(N,)`` index of each row into them)."""
    first: dict = {}
    index = np.array([first.setdefault(p, len(first)) for p in samples.paths], dtype=np.int64)
    return list(first), index


def decode_into(out: torch.Tensor, samples: Samples, paths: list, size: int,
                workers: int) -> None:
    """Decode ``paths`` (resized to ``size``) into ``out`` ``(U, 3, S, S)`` uint8, in order.

    A thread pool decodes (libjpeg-turbo releases the GIL); chunks bound the host copy when
    ``out`` lives on the GPU.  A bad file raises ImageDecodeError naming the CSV row too.
    """
    rows = {}
    for path, row in zip(samples.paths, samples.rows):
        rows.setdefault(path, int(row))

    def load(path):
        try:
            return load_image(path, size)
        except ImageDecodeError as err:
            raise ImageDecodeError(f"{samples.csv} row {csv_line(rows[path])}: {err}") from None

    chunks = range(0, len(paths), DECODE_CHUNK)
    # the one-time decode runs before the model starts: it may take every core
    with ThreadPoolExecutor(max_workers=max(1, workers, os.cpu_count() or 1)) as pool:
        for start in tracked(chunks, f"decoding {len(paths)} images once"):
            chunk = list(pool.map(load, paths[start:start + DECODE_CHUNK]))
            out[start:start + len(chunk)].copy_(torch.stack(chunk))


def decoded_set(samples: Samples, size: int, device: torch.device, channels_last: bool,
                workers: int) -> tuple[torch.Tensor, np.ndarray]:
    """(decoded files on ``device``, ``(N,)`` row -> file index).

    The tensor is ``(U, 3, S, S)`` uint8, or ``(U, S, S, 3)`` with ``channels_last`` so that a
    gathered batch is already NHWC (``as_nchw`` views it as ``(B, 3, S, S)``) and needs no
    layout copy.  Gathering rows of a contiguous tensor is many times faster than of a view.
    """
    paths, index = unique_files(samples)
    digest = hashlib.sha1("\n".join(map(str, paths)).encode()).hexdigest()
    key = (digest, size, str(device), channels_last)
    storage = _DECODED.get(key)
    if storage is None:
        shape = (len(paths), size, size, 3) if channels_last else (len(paths), 3, size, size)
        storage = torch.empty(shape, dtype=torch.uint8, device=device)
        decode_into(as_nchw(storage) if channels_last else storage, samples, paths, size,
                    workers)
        _DECODED[key] = storage
    return storage, index


def as_nchw(nhwc: torch.Tensor) -> torch.Tensor:
    """``(B, S, S, 3)`` -> the same memory seen as ``(B, 3, S, S)`` (channels_last strides)."""
    return nhwc.permute(0, 3, 1, 2)


class CacheLoader(Loader):
    """Batches gathered from a decoded uint8 set held in RAM (``cache-ram``) or on the GPU.

    Args:
        samples, spec, options: as every backend (see ``create_loader``).
        on_gpu: keep the decoded set on ``options.device`` (a CUDA device).
    """

    def __init__(self, samples: Samples, spec: AugmentSpec, options: LoaderOptions,
                 on_gpu: bool = False):
        super().__init__(samples, spec, options)
        self.backend = "cache-gpu" if on_gpu else "cache-ram"
        device = options.device
        store = device if on_gpu else torch.device("cpu")
        start = time.perf_counter()
        self.images, self.index = decoded_set(samples, spec.size, store, options.channels_last,
                                              options.workers)
        self.decode_s = time.perf_counter() - start
        self.labels = torch.from_numpy(samples.labels).to(device)
        self.augment = BatchAugment(spec)
        # a CPU run renders views with OpenCV; a CUDA run augments the batch on the GPU
        self.views = cpu_views(spec, options) if device.type == "cpu" else None
        self.normalise = normaliser_for(spec, device)

    def generator(self) -> torch.Generator:
        """The device generator of the augmentation draws, reproducible per (seed, epoch,
        shard); every draw stays on the device (reading one back would stall the GPU)."""
        o = self.options
        seed = (o.seed * 1_000_003 + self.epoch * 7919 + o.shard.index) % 2**63
        return torch.Generator(device=o.device).manual_seed(seed)

    def __iter__(self):
        o = self.options
        order = self.order()
        if self.training and self.views is not None:
            yield from self.rendered(order)
            return
        g = self.generator()
        files = to_device(torch.from_numpy(self.index[order]), self.images.device)
        rows = to_device(torch.from_numpy(order), o.device)
        # uint8 crosses the bus (a quarter of the bytes of float32), gathered ahead on a thread
        gathered = gather_batches(self.images, files, o.batch_size, o.device)
        for start, images in zip(range(0, len(order), o.batch_size), gathered):
            if o.channels_last:
                images = as_nchw(images)                       # (B, 3, S, S), NHWC in memory
            if self.training and not self.augment.identity:
                images = self.augment(images, g)
            yield (self.normalise(images, channels_last=o.channels_last, dtype=o.dtype),
                   self.labels.index_select(0, rows[start:start + o.batch_size]))

    def rendered(self, order: np.ndarray):
        """Training batches whose views OpenCV renders on the CPU, one batch ahead."""
        o, bs = self.options, self.options.batch_size
        rng = np.random.default_rng((o.seed, self.epoch, o.shard.index))
        starts = range(0, len(order), bs)
        files = (self.index[order[s:s + bs]] for s in starts)
        for s, images in zip(starts, self.views.stream(self.images, files, rng)):
            x = self.normalise(as_nchw(images), channels_last=o.channels_last,
                          dtype=o.dtype)
            yield (x if o.channels_last else x.contiguous(),
                   self.labels.index_select(0, torch.from_numpy(order[s:s + bs])))


def to_device(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A host tensor on ``device``; to a GPU through pinned memory, so the copy is asynchronous
    (a copy from pageable memory makes the host wait for it)."""
    if device.type != "cuda" or x.is_cuda:
        return x.to(device)
    return x.pin_memory().to(device, non_blocking=True)


def cpu_views(spec: AugmentSpec, options: LoaderOptions):
    """OpenCV renderer of ``spec``'s training views for the RAM cache; None when not needed.

    The pool may use every core: a batch is the same work however many threads share it, and
    more threads only finish it sooner (threads cost no process or copy, unlike workers).
    Without OpenCV the batched ``grid_sample`` augmentation stays (said once).
    """
    from ..utils.device import usable_cores
    from .cv_augment import BatchViews, cv2_import_error

    draws = spec.draws()
    if draws.identity:
        return None
    why = cv2_import_error()
    if why is not None:
        if why not in _SAID:
            _SAID.add(why)
            console.print(f"[yellow]OpenCV unavailable ({why}); cache-ram augments whole "
                          f"batches with grid_sample[/yellow]")
        return None
    return BatchViews(draws, spec.size, max(options.workers, usable_cores()))


def fallback_loader(samples: Samples, spec: AugmentSpec, options: LoaderOptions, why: str):
    """The workers backend, marked with the reason the cache was not used."""
    from .workers_backend import WorkerLoader

    console.print(f"[yellow]{why}; falling back to the workers loader[/yellow]")
    loader = WorkerLoader(samples, spec, options)
    loader.fallback = why
    return loader


def ram_cache(samples: Samples, spec: AugmentSpec, options: LoaderOptions) -> Loader:
    """``cache-ram``: a :class:`CacheLoader` in host memory, or the workers when it does not fit."""
    need = cache_bytes(len(unique_files(samples)[0]), spec.size)
    free = available_ram_bytes()
    if not fits(need, free):
        return fallback_loader(samples, spec, options,
                               f"cache-ram: {need / 2**30:.2f} GiB of decoded images does not "
                               f"fit in {free / 2**30:.2f} GiB of free RAM")
    return CacheLoader(samples, spec, options)


def gpu_cache(samples: Samples, spec: AugmentSpec, options: LoaderOptions) -> Loader:
    """``cache-gpu``: the decoded set on the GPU; ``cache-ram`` when it does not fit there."""
    device = options.device
    if device.type != "cuda":
        raise UsageError(f"the cache-gpu loader needs a CUDA device (this run is on {device}); "
                         f"use --loader cache-ram instead")
    need = cache_bytes(len(unique_files(samples)[0]), spec.size)
    free = available_gpu_bytes(device)
    if not fits(need, free):
        console.print(f"[yellow]cache-gpu: {need / 2**30:.2f} GiB of decoded images does not fit "
                      f"in {free / 2**30:.2f} GiB of free GPU memory; falling back to "
                      f"cache-ram[/yellow]")
        loader = ram_cache(samples, spec, options)
        loader.fallback = loader.fallback or "cache-gpu: does not fit in GPU memory"
        return loader
    return CacheLoader(samples, spec, options, on_gpu=True)
