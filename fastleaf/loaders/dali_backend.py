"""NVIDIA DALI backend: decode and augment in DALI's own threads (CPU) or on the GPU.

    fastleaf train --data data/classify-leaves --loader dali      # GPU pipeline on CUDA
    fastleaf train --data data/classify-leaves --loader dali --device cpu   # CPU-only pipeline

The file list and labels come from :class:`~fastleaf.data.table.Samples`, never from a
directory scan.  The reader's label is the *row index* into the loader's own file list; the
true labels are looked up on the device.  That keeps test rows (label -1) legal for DALI and
makes the yielded order checkable against the Samples order.

Shuffling: the reader reshuffles the whole file list after every epoch
(``shuffle_after_epoch``, seeded with ``options.seed`` on every shard, so shards cut one
global permutation).  The sequence of epoch orders is reproducible for a seed when epochs are
read one after another from a fresh loader; ``set_epoch(n)`` records ``n`` but cannot seek the
reader to epoch ``n``.  Rows and batches per shard are the base's (``train_count``,
``shard_range``), as in every backend.  Augmentation randomness comes from the pipeline seed
(``seed * 7919 + shard``), also reproducible for a seed.
"""
from __future__ import annotations

import numpy as np
import torch

from ..data.augment import AugmentSpec
from ..data.imageio import ImageDecodeError, decode_rgb, probe, read_bytes
from ..data.table import Samples, csv_line
from ..errors import FastleafError
from .base import Loader, LoaderOptions, augment_seed

FALLBACK = "use --loader torchvision (or --loader auto) instead"
READER = "Reader"
HW_DECODER_LOAD = 0.65

# leading bytes of the formats DALI's image decoder reads
MAGIC = (b"\xff\xd8\xff", b"\x89PNG", b"BM", b"II*\x00", b"MM\x00*", b"\x00\x00\x00\x0cjP",
         b"\xff\x4f\xff\x51", b"P1", b"P2", b"P3", b"P4", b"P5", b"P6")


# words of DALI failures that no file causes: a scan of the data set would not explain them
NOT_A_FILE = ("out of memory", "allocat", "cudaerror", "cuda error", "driver", "initiali",
              "construct", "nvml", "device_id")


class DaliUnavailable(FastleafError, ValueError):
    """DALI cannot run here; the message says how to fall back."""


def dali_import_error() -> str | None:
    """None when DALI and its PyTorch plugin import, else the reason they do not."""
    try:
        import nvidia.dali  # noqa: F401
        import nvidia.dali.plugin.pytorch  # noqa: F401
    except Exception as err:   # a broken install can raise more than ImportError
        return f"{type(err).__name__}: {err}"
    return None


def require_dali() -> None:
    reason = dali_import_error()
    if reason is not None:
        raise DaliUnavailable(f"--loader dali: NVIDIA DALI cannot be imported ({reason}); "
                              f"install nvidia-dali-cuda120 or {FALLBACK}")


def row_name(samples: Samples, i: int) -> str:
    return f"{samples.csv} row {csv_line(samples.rows[i])}"


def check_headers(samples: Samples) -> None:
    """Refuse missing files, formats DALI cannot decode and images over the pixel limit,
    before the pipeline starts.

    Reading each file's header is cheap next to decoding; DALI decodes without the shared
    entry point, so its pixel limit (decompression bombs) is enforced here, and DALI's own
    errors name no file.
    """
    for i, path in enumerate(samples.paths):
        try:
            data = read_bytes(path)
            head = data[:12]
            webp = head[:4] == b"RIFF" and head[8:12] == b"WEBP"
            if not (webp or head.startswith(MAGIC)):
                raise ImageDecodeError(
                    f"{path}: not a JPEG/PNG/BMP/TIFF/WebP/JPEG2000/PNM image, which DALI needs; "
                    f"convert it or {FALLBACK}")
            probe(data, path)
        except ImageDecodeError as err:
            raise type(err)(f"{err} [{row_name(samples, i)}]") from None


def find_bad_image(samples: Samples, rows) -> ImageDecodeError | None:
    """The first of ``rows`` that does not decode, as an error naming file and CSV row."""
    for i in rows:
        try:
            decode_rgb(samples.paths[i])
        except ImageDecodeError as err:
            return ImageDecodeError(f"{err} [{row_name(samples, i)}]")
    return None


def about_decoding(message: str) -> bool:
    """Whether a DALI error comes from decoding a file (then some file may be bad), not from
    memory, the driver or setting a decoder up."""
    text = message.lower()
    if any(word in text for word in NOT_A_FILE):
        return False
    return "decoders." in text or "decoder" in text


def explain_failure(err: Exception, samples: Samples, rows) -> Exception:
    """The error to show for a DALI failure: the bad file when decoding failed and Python's
    decoder refuses one of ``rows`` too, else DALI's own message in full, on one line."""
    text = str(err)
    if about_decoding(text):
        # DALI names no file: find the one Python's decoder refuses too (reads every file)
        bad = find_bad_image(samples, rows)
        if bad is not None:
            return bad
    lines = []
    for line in (line.strip() for line in text.splitlines()):
        if line and line not in lines:     # DALI repeats its headers once per nesting level
            lines.append(line)
    return RuntimeError(f"DALI pipeline failed: {' '.join(lines) or type(err).__name__}; "
                        f"{FALLBACK}")


def uniform(bounds: tuple[float, float], scale: float = 1.0, shape=None):
    """A DALI draw from ``bounds`` (times ``scale``), or the constant when the range is a point."""
    from nvidia.dali import fn

    lo, hi = sorted((bounds[0] * scale, bounds[1] * scale))
    if hi - lo < 1e-6:       # below float32 resolution near 1: DALI needs a real range
        return [lo] * shape[0] if shape else lo
    return fn.random.uniform(range=[lo, hi], **({"shape": shape} if shape else {}))


def flip_sign(probability: float):
    """-1 with ``probability`` (a mirror along that axis), else +1."""
    from nvidia.dali import fn, types

    if probability <= 0:
        return 1.0
    return 1.0 - 2.0 * fn.cast(fn.random.coin_flip(probability=probability), dtype=types.FLOAT)


def warp_matrix(d, size: float):
    """Flips, then rotate / zoom about the centre, then shift: the order of the other backends."""
    from nvidia.dali import fn

    centre = [size / 2, size / 2]
    matrix = fn.transforms.scale(scale=fn.stack(flip_sign(d.hflip), flip_sign(d.vflip))
                                 if d.hflip or d.vflip else [1.0, 1.0], center=centre)
    # DALI's rotation turns clockwise on screen (y points down): negate the angle
    matrix = fn.transforms.rotation(matrix, angle=uniform(d.angle, -1.0), center=centre)
    if d.zoom != (1.0, 1.0):
        zoom = uniform(d.zoom)
        matrix = fn.transforms.scale(matrix, scale=[zoom, zoom] if isinstance(zoom, float)
                                     else fn.stack(zoom, zoom), center=centre)
    if d.shift != (0.0, 0.0):
        matrix = fn.transforms.translation(matrix, offset=uniform(d.shift, size, shape=[2]))
    return matrix


def grey_mean(images):
    """Per-image mean of the ITU-R 601-2 grey, the centre the other backends' contrast uses."""
    from nvidia.dali import fn

    means = fn.reductions.mean(images, axes=[0, 1])                  # (3,) per image
    r, g, b = (fn.slice(means, start=[c], shape=[1], axes=[0]) for c in range(3))
    return fn.reshape(0.2989 * r + 0.587 * g + 0.114 * b, shape=[])


def augment(images, spec: AugmentSpec):
    """Random views of ``(H, W, 3)`` uint8 ``spec.size`` images; returns (images, mirror)."""
    from nvidia.dali import fn

    d, size = spec.draws(), float(spec.size)
    mirror = 0
    if d.affine:
        # flips, rotate and shift-scale-rotate share one affine warp: one interpolation
        images = fn.warp_affine(images, matrix=warp_matrix(d, size), fill_value=0,
                                inverse_map=False)
    else:
        if d.vflip:
            images = fn.flip(images, horizontal=0,
                             vertical=fn.random.coin_flip(probability=d.vflip))
        # the horizontal flip is free inside crop_mirror_normalize
        mirror = fn.random.coin_flip(probability=d.hflip) if d.hflip else 0
    if d.colour:
        images = fn.brightness_contrast(images, brightness=uniform(d.brightness),
                                        contrast=uniform(d.contrast),
                                        contrast_center=grey_mean(images))
    return images, mirror


def decode(encoded, spec: AugmentSpec, gpu: bool):
    """Encoded files -> ``(spec.size, spec.size, 3)`` uint8, whatever the file's size."""
    from nvidia.dali import fn, types

    device = "mixed" if gpu else "cpu"
    # share of each batch for the GPU's hardware JPEG decoder (A100/H100), the rest goes to
    # the CUDA decoder; DALI's own default, until ``fastleaf bench --modes load`` picks better
    hints = {"hw_decoder_load": HW_DECODER_LOAD} if gpu else {}
    draws = spec.draws()
    if draws.random_crop:
        # decode only the crop window, then scale it to the model's size
        images = fn.decoders.image_random_crop(
            encoded, device=device, output_type=types.RGB, random_area=list(draws.crop_scale),
            random_aspect_ratio=list(draws.crop_ratio), **hints)
    else:
        images = fn.decoders.image(encoded, device=device, output_type=types.RGB, **hints)
    # an exact square like the other backends (stretch, linear, antialiased)
    return fn.resize(images, size=[spec.size, spec.size])


def build_pipeline(files: list[str], spec: AugmentSpec, options: LoaderOptions, shard: bool):
    """A built DALI pipeline yielding (images, file index); CPU-only unless the device is CUDA.

    Args:
        files: paths in reader order (labels are their indices in this list).
        shard: cut the list with the reader's ``shard_id``/``num_shards`` (training).
    """
    from nvidia.dali import fn, pipeline_def, types

    gpu = options.device.type == "cuda"
    out_dtype = types.FLOAT16 if options.dtype == torch.float16 else types.FLOAT
    count, index = (options.shard.count, options.shard.index) if shard else (1, 0)

    @pipeline_def
    def pipeline():
        encoded, idx = fn.readers.file(
            files=files, labels=list(range(len(files))), name=READER, shard_id=index,
            num_shards=count, pad_last_batch=True, shuffle_after_epoch=spec.train,
            **({"shuffle_after_epoch_seed": options.seed} if spec.train else {}))
        images = decode(encoded, spec, gpu)
        mirror = 0
        if spec.train:
            images, mirror = augment(images, spec)
        images = fn.crop_mirror_normalize(
            images, dtype=out_dtype, output_layout="HWC" if options.channels_last else "CHW",
            mean=[m * 255.0 for m in spec.mean], std=[s * 255.0 for s in spec.std],
            mirror=mirror)
        # the row index on the GPU too: the label lookup then never copies from the host
        return images, (idx.gpu() if gpu else idx)

    device_id = (options.device.index or 0) if gpu else None
    pipe = pipeline(batch_size=options.batch_size, num_threads=max(1, options.workers),
                    device_id=device_id, seed=augment_seed(options),
                    prefetch_queue_depth=2)
    pipe.build()
    return pipe


class DaliLoader(Loader):
    """DALI pipeline behind the loader contract (see the module docstring for shuffling)."""

    backend = "dali"

    def __init__(self, samples: Samples, spec: AugmentSpec, options: LoaderOptions):
        require_dali()
        super().__init__(samples, spec, options)
        rows = self.reader_rows() if self.training else self.rows
        # the reader's own file list: its labels are positions in it
        self.listed = samples.subset(rows)
        # positions of distinct rows (training lists wrap around, repeating a few)
        self.distinct = np.sort(np.unique(rows, return_index=True)[1])
        check_headers(self.listed.subset(self.distinct))
        self.labels = torch.as_tensor(self.listed.labels, dtype=torch.int64,
                                      device=options.device)
        self.iterator = self.guard(self.start)
        self.unfinished = False

    def reader_rows(self) -> np.ndarray:
        """The training list the reader cuts into ``shard.count`` equal shards, wrapped around
        so every shard holds the same count (equal batch counts per rank).

        Each shard reads its whole slice; ``__iter__`` stops after ``len(self)`` batches, so
        with ``drop_last`` a slice needs one full batch at least.
        """
        o, n = self.options, len(self.samples)
        per_shard = max(-(-n // o.shard.count), o.batch_size if o.drop_last else 1)
        return np.resize(np.arange(n), per_shard * o.shard.count)

    def order(self) -> np.ndarray:
        if self.training:
            raise NotImplementedError("DALI's reader shuffles training rows with its own "
                                      "generator; their order is only seen in the batches")
        return self.rows

    def start(self):
        from nvidia.dali.plugin.pytorch import DALIGenericIterator, LastBatchPolicy

        pipe = build_pipeline([str(p) for p in self.listed.paths], self.spec, self.options,
                              shard=self.training)
        # PARTIAL + the reader's pad_last_batch: every row exactly once, padding dropped
        return DALIGenericIterator([pipe], ["images", "index"], reader_name=READER,
                                   last_batch_policy=LastBatchPolicy.PARTIAL, auto_reset=True)

    def guard(self, step):
        """Run a DALI step; map its failures to the file that caused them, or to a fallback."""
        try:
            return step()
        except RuntimeError as err:
            raise explain_failure(err, self.listed, self.distinct) from err

    def drain(self) -> None:
        """Read to the end of DALI's epoch; its StopIteration resets the reader (auto_reset).

        ``next`` only: ``iter()`` on a DALI iterator resets it, which would skip an epoch.
        """
        while True:
            try:
                next(self.iterator)
            except StopIteration:
                return

    def __iter__(self):
        if self.unfinished:
            # the reader cannot rewind mid-epoch: finish the old epoch so this one starts clean
            self.guard(self.drain)
        self.unfinished = True
        for _ in range(len(self)):
            out = self.guard(lambda: next(self.iterator))[0]
            yield self.to_batch(out["images"], out["index"])
        self.guard(self.drain)   # the partial batch drop_last skips, then the epoch's end
        self.unfinished = False

    def to_batch(self, images: torch.Tensor, index: torch.Tensor):
        """DALI output -> contract: ``(B, 3, H, W)`` on the device, int64 labels ``(B,)``."""
        device = self.options.device
        images = images.to(device, non_blocking=device.type == "cuda")
        if self.options.channels_last:
            images = images.permute(0, 3, 1, 2)   # (B, H, W, 3) -> channels_last (B, 3, H, W)
        if images.dtype != self.options.dtype:
            images = images.to(self.options.dtype)
        index = index.view(-1).to(device=self.labels.device, dtype=torch.int64)
        return images, self.labels.index_select(0, index)
