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
from ..errors import BackendFailed
from .base import Loader, LoaderOptions, augment_seed, normaliser_for
from .dali_graph import READER, GraphOptions, define_graph

FALLBACK = "use --loader workers (or --loader auto) instead"

# leading bytes of the formats DALI's image decoder reads
MAGIC = (b"\xff\xd8\xff", b"\x89PNG", b"BM", b"II*\x00", b"MM\x00*", b"\x00\x00\x00\x0cjP",
         b"\xff\x4f\xff\x51", b"P1", b"P2", b"P3", b"P4", b"P5", b"P6")


# words of DALI failures that no file causes: a scan of the data set would not explain them
NOT_A_FILE = ("out of memory", "allocat", "cudaerror", "cuda error", "driver", "initiali",
              "construct", "nvml", "device_id")


class DaliUnavailable(BackendFailed, ValueError):
    """DALI cannot be imported here; the message says what to install or use instead."""


def dali_import_error() -> str | None:
    """None when DALI and its PyTorch plugin import, else the reason they do not."""
    try:
        import nvidia.dali  # noqa: F401
        import nvidia.dali.plugin.pytorch  # noqa: F401
    except Exception as err:   # a broken install can raise more than ImportError
        return f"{type(err).__name__}: {err}"
    return None


def dali_package() -> str:
    """The DALI wheel built for the CUDA major version of the installed torch."""
    cuda = torch.version.cuda or ""
    return "nvidia-dali-cuda130" if cuda.split(".")[0] == "13" else "nvidia-dali-cuda120"


def require_dali() -> None:
    reason = dali_import_error()
    if reason is not None:
        raise DaliUnavailable(f"--loader dali: NVIDIA DALI cannot be imported ({reason}); "
                              f"install {dali_package()} or {FALLBACK}")


def row_name(samples: Samples, i: int) -> str:
    return f"{samples.csv} row {csv_line(samples.rows[i])}"


def check_headers(samples: Samples) -> set[tuple[int, int]]:
    """Refuse missing files, formats DALI cannot decode and images over the pixel limit,
    before the pipeline starts; returns the files' distinct (width, height).

    Reading each file's header is cheap next to decoding; DALI decodes without the shared
    entry point, so its pixel limit (decompression bombs) is enforced here, and DALI's own
    errors name no file.
    """
    sizes = set()
    for i, path in enumerate(samples.paths):
        try:
            data = read_bytes(path)
            head = data[:12]
            webp = head[:4] == b"RIFF" and head[8:12] == b"WEBP"
            if not (webp or head.startswith(MAGIC)):
                raise ImageDecodeError(
                    f"{path}: not a JPEG/PNG/BMP/TIFF/WebP/JPEG2000/PNM image, which DALI needs; "
                    f"convert it or {FALLBACK}")
            header = probe(data, path)
        except ImageDecodeError as err:
            raise type(err)(f"{err} [{row_name(samples, i)}]") from None
        width, height = header.size
        # DALI's decoder applies the EXIF orientation: a quarter turn swaps the sides
        sizes.add((height, width) if header.orientation in (5, 6, 7, 8) else (width, height))
    return sizes


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
    return BackendFailed(f"DALI pipeline failed: {' '.join(lines) or type(err).__name__}; "
                         f"{FALLBACK}")


def graph_options(options: LoaderOptions, sizes: set[tuple[int, int]], spec: AugmentSpec):
    """What the graph needs to know of the device, the files' (width, height) and the pool.

    A run holds a training and a validation pipeline, and the training one prefetches the next
    epoch's first batches while validation runs: with both mixed decoders' threads pinned to
    the same first cores (DALI's ``affine`` default) the two pools would share those cores
    thread by thread.  Training keeps the pinned pool; validation's threads are left to the OS.
    """
    return GraphOptions(gpu=options.device.type == "cuda",
                        native_size=sizes == {(spec.size, spec.size)},
                        max_width=max((w for w, _ in sizes), default=0),
                        max_height=max((h for _, h in sizes), default=0),
                        pinned=spec.train)


def build_pipeline(files: list[str], spec: AugmentSpec, options: LoaderOptions, shard: bool,
                   sizes: set[tuple[int, int]] = frozenset()):
    """A built DALI pipeline yielding (uint8 HWC images, file index); CPU-only unless the device
    is CUDA.

    Args:
        files: paths in reader order (labels are their indices in this list).
        shard: cut the list with the reader's ``shard_id``/``num_shards`` (training).
        sizes: the files' (width, height) from their headers (resize and buffer decisions).
    """
    from nvidia.dali import pipeline_def

    graph = graph_options(options, set(sizes), spec)
    reader_shard = (options.shard.index, options.shard.count) if shard else (0, 1)

    @pipeline_def
    def pipeline():
        return define_graph(files, spec, graph, reader_shard, options.seed)

    device_id = (options.device.index or 0) if graph.gpu else None
    pipe = pipeline(batch_size=options.batch_size, num_threads=max(1, options.workers),
                    device_id=device_id, seed=augment_seed(options), prefetch_queue_depth=2)
    pipe.build()
    return pipe


class DaliLoader(Loader):
    """DALI pipeline behind the loader contract (see the module docstring for shuffling)."""

    backend = "dali"

    def __init__(self, samples: Samples, spec: AugmentSpec, options: LoaderOptions):
        require_dali()
        if options.balanced and spec.train:
            # the reader shuffles whole file lists; it cannot draw rows by class weight
            raise BackendFailed(f"DALI's reader cannot draw a class-balanced epoch "
                                f"(--sampler balanced); {FALLBACK}")
        super().__init__(samples, spec, options)
        rows = self.reader_rows() if self.training else self.rows
        # the reader's own file list: its labels are positions in it
        self.listed = samples.subset(rows)
        # positions of distinct rows (training lists wrap around, repeating a few)
        self.distinct = np.sort(np.unique(rows, return_index=True)[1])
        self.sizes = check_headers(self.listed.subset(self.distinct))
        self.normalise = normaliser_for(spec, options.device)
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
                              shard=self.training, sizes=self.sizes)
        # PARTIAL + the reader's pad_last_batch: every row exactly once, padding dropped
        return DALIGenericIterator([pipe], ["images", "index"], reader_name=READER,
                                   last_batch_policy=LastBatchPolicy.PARTIAL, auto_reset=True)

    def guard(self, step):
        """Run a DALI step; map its failures to the file that caused them, or to a fallback."""
        try:
            return step()
        except (StopIteration, BackendFailed):
            raise
        except Exception as err:    # DALI raises RuntimeError, and ValueError/TypeError when
            # a graph cannot be defined: none of them may reach the user as a traceback
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
        """DALI output -> contract: uint8 ``(B, H, W, 3)`` becomes ``(B, 3, H, W)`` normalised
        in the model's dtype and layout in one fused pass; int64 labels ``(B,)``."""
        device = self.options.device
        images = images.to(device, non_blocking=device.type == "cuda").permute(0, 3, 1, 2)
        images = self.normalise(images, channels_last=self.options.channels_last,
                                dtype=self.options.dtype)
        index = index.view(-1).to(device=self.labels.device, dtype=torch.int64)
        return images, self.labels.index_select(0, index)
