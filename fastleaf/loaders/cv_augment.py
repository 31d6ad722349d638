"""Training views on the CPU with OpenCV: one affine warp and one lookup table per image.

The worker loader (through albumentations) and the ``cache-ram`` loader both render views here,
from the ranges of :meth:`AugmentSpec.draws`, so they give the same pixels for the same draw::

    rng = np.random.default_rng(0)
    view = draw_view(spec.draws(), 224, rng)
    out = render(image_hwc_uint8, view, 224)        # (224, 224, 3) uint8

The torchvision order is kept -- random resized crop -> flips -> rotate/shift-scale (zero fill)
-> contrast, brightness -- but folded: the crop, its resize, the flips and the affine are one
``cv2.warpAffine`` (one interpolation), and brightness and contrast are one ``cv2.LUT``
(both are linear in the pixel value, so they compose into one table).  OpenCV releases the GIL
in both calls, so a thread pool renders a batch in parallel.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data.augment import Draws
from ..data.imageio import decode_with_pillow, pillow_rgb, probe, read_bytes, resize_uint8

LUMA = (0.2989, 0.587, 0.114)      # ITU-R 601-2, as torchvision's contrast uses it
CROP_TRIES = 10                    # as torchvision's RandomResizedCrop


def cv2_import_error() -> str | None:
    """None when OpenCV imports, else why not."""
    try:
        import cv2  # noqa: F401
    except Exception as err:   # a broken wheel can raise more than ImportError
        return f"{type(err).__name__}: {err}"
    return None


def decode_rgb_cv2(path: Path) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB, decoded by OpenCV; Pillow reads what OpenCV cannot.

    The shared entry point's checks come first: the file is read once, its header probed and
    refused above the pixel limit (``FASTLEAF_MAX_PIXELS``) before any pixel is decoded.  EXIF
    orientation is applied, as the shared decoder does.
    """
    import cv2

    data = read_bytes(path)
    probe(data, path)
    rgb_flag = getattr(cv2, "IMREAD_COLOR_RGB", None)      # OpenCV >= 4.10 decodes to RGB
    image = cv2.imdecode(np.frombuffer(data, np.uint8),
                         cv2.IMREAD_COLOR if rgb_flag is None else rgb_flag)
    if image is not None and rgb_flag is None:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    if image is None:      # CMYK, odd formats, damaged files: Pillow reads or names the problem
        image = pillow_rgb(decode_with_pillow(data, path))
    return image


def resize_hwc(image: np.ndarray, size: int) -> np.ndarray:
    """``size`` x ``size`` with the filter every backend's decode uses (antialiased bilinear,
    ``imageio.resize_uint8``), so a file read at another size gives the same pixels anywhere."""
    if image.shape[:2] == (size, size):
        return image
    import torch

    chw = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)
    return resize_uint8(chw, size).permute(1, 2, 0).contiguous().numpy()


@dataclass(frozen=True)
class View:
    """One image's random draw: crop box in pixels, flips, affine, colour factors."""

    box: tuple[int, int, int, int]     # x0, y0, width, height
    hflip: bool = False
    vflip: bool = False
    angle: float = 0.0                 # degrees, counter-clockwise on screen
    zoom: float = 1.0
    shift: tuple[float, float] = (0.0, 0.0)   # fractions of the side (x, y)
    brightness: float = 1.0
    contrast: float = 1.0


def crop_box(draws: Draws, size: int, rng: np.random.Generator) -> tuple[int, int, int, int]:
    """torchvision's RandomResizedCrop box on a ``size`` square: area, log-ratio, position."""
    if not draws.random_crop:
        return 0, 0, size, size
    area = size * size
    log_ratio = (math.log(draws.crop_ratio[0]), math.log(draws.crop_ratio[1]))
    for _ in range(CROP_TRIES):
        target = area * rng.uniform(*draws.crop_scale)
        ratio = math.exp(rng.uniform(*log_ratio))
        w, h = round(math.sqrt(target * ratio)), round(math.sqrt(target / ratio))
        if 0 < w <= size and 0 < h <= size:
            return int(rng.integers(0, size - w + 1)), int(rng.integers(0, size - h + 1)), w, h
    return 0, 0, size, size


def draw_view(draws: Draws, size: int, rng: np.random.Generator) -> View:
    """One image's parameters, drawn in a fixed order so a seed gives the same views anywhere."""
    box = crop_box(draws, size, rng)
    u = rng.uniform(size=4)
    return View(box=box, hflip=bool(u[0] < draws.hflip), vflip=bool(u[1] < draws.vflip),
                angle=float(rng.uniform(*draws.angle)), zoom=float(rng.uniform(*draws.zoom)),
                shift=(float(rng.uniform(*draws.shift)), float(rng.uniform(*draws.shift))),
                brightness=float(rng.uniform(*draws.brightness)),
                contrast=float(rng.uniform(*draws.contrast)))


def view_matrix(view: View, size: int) -> np.ndarray:
    """``(2, 3)`` map from crop pixels (``x``, ``y`` from the box's corner) to output pixels.

    Pixel centres sit at integer coordinates, as in ``cv2.warpAffine``: resize the crop
    (``(u + 0.5) * size / w - 0.5``), mirror (``size - 1 - x``), then rotate and zoom about the
    centre ``(size - 1) / 2`` and shift.
    """
    _, _, w, h = view.box
    sx, sy = size / w, size / h
    resize = np.array([[sx, 0, 0.5 * sx - 0.5], [0, sy, 0.5 * sy - 0.5], [0, 0, 1]])
    flip = np.diag([-1.0 if view.hflip else 1.0, -1.0 if view.vflip else 1.0, 1.0])
    flip[0, 2] = size - 1 if view.hflip else 0.0
    flip[1, 2] = size - 1 if view.vflip else 0.0
    c = (size - 1) / 2
    a = math.radians(view.angle)
    cos, sin = view.zoom * math.cos(a), view.zoom * math.sin(a)
    # y points down, so a counter-clockwise turn on screen is [[cos, sin], [-sin, cos]]
    affine = np.array([[cos, sin, c - cos * c - sin * c + view.shift[0] * size],
                       [-sin, cos, c + sin * c - cos * c + view.shift[1] * size], [0, 0, 1]])
    return (affine @ flip @ resize)[:2]


def colour_lut(view: View, grey_mean: float) -> np.ndarray:
    """``(256,)`` uint8 table for brightness ``b`` and contrast ``c`` about the grey mean ``m``.

    ``b * (c * x + (1 - c) * m)``: torchvision's brightness then contrast (or the other way
    round; without the intermediate clamp both orders are this one line).
    """
    b, c = view.brightness, view.contrast
    levels = np.arange(256, dtype=np.float32)
    return np.clip(np.rint(b * (c * levels + (1 - c) * grey_mean)), 0, 255).astype(np.uint8)


def is_identity(view: View, size: int) -> bool:
    return view.box == (0, 0, size, size) and view.angle == 0 and view.zoom == 1 \
        and view.shift == (0.0, 0.0)


def render(image: np.ndarray, view: View, size: int, out: np.ndarray | None = None) -> np.ndarray:
    """The view of ``image`` ``(size, size, 3)`` uint8 HWC, written into ``out`` when given."""
    import cv2

    if out is None:
        out = np.empty((size, size, 3), dtype=np.uint8)
    if is_identity(view, size):
        # flips alone move whole pixels: no interpolation at all
        code = {(True, False): 1, (False, True): 0, (True, True): -1}.get((view.hflip, view.vflip))
        if code is None:
            np.copyto(out, image)
        else:
            cv2.flip(image, code, dst=out)
    else:
        x0, y0, w, h = view.box
        # warping from the crop itself leaves zeros outside it, as RandomAffine fills after a
        # crop; a crop alone is resized with its edge pixels repeated, as torchvision resizes
        moves = view.angle != 0 or view.zoom != 1 or view.shift != (0.0, 0.0)
        cv2.warpAffine(image[y0:y0 + h, x0:x0 + w], view_matrix(view, size), (size, size),
                       dst=out, flags=cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_CONSTANT if moves else cv2.BORDER_REPLICATE,
                       borderValue=(0, 0, 0))
    if view.brightness != 1.0 or view.contrast != 1.0:
        grey = 0.0 if view.contrast == 1.0 else float(np.dot(cv2.mean(out)[:3], LUMA))
        cv2.LUT(out, colour_lut(view, grey), dst=out)
    return out


class BatchViews:
    """Views of gathered batches, rendered by a thread pool one batch ahead of the consumer.

    Args:
        draws, size: the ranges to draw from and the output side.
        threads: render threads (OpenCV releases the GIL; its own threading is turned off).
    """

    def __init__(self, draws: Draws, size: int, threads: int):
        import cv2

        cv2.setNumThreads(1)   # parallel over images here; nested threads would only contend
        self.draws, self.size, self.threads = draws, size, max(1, threads)

    def submit(self, pool, store: np.ndarray, files: np.ndarray, rng: np.random.Generator):
        """Start rendering the images ``files`` of ``store``; returns (out, futures)."""
        import torch

        views = [draw_view(self.draws, self.size, rng) for _ in files]    # drawn in order
        out = torch.empty((len(files), self.size, self.size, 3), dtype=torch.uint8)
        dst, nhwc = out.numpy(), store.shape[-1] == 3

        def work(lo: int, hi: int) -> None:
            for i in range(lo, hi):
                src = store[files[i]] if nhwc else np.ascontiguousarray(
                    store[files[i]].transpose(1, 2, 0))
                render(src, views[i], self.size, dst[i])

        step = -(-len(files) // self.threads)
        return out, [pool.submit(work, lo, min(lo + step, len(files)))
                     for lo in range(0, len(files), step)]

    def stream(self, store, batches, rng: np.random.Generator):
        """``(B, S, S, 3)`` uint8 tensors for each array of file indices in ``batches``.

        ``store`` is the decoded set, ``(U, S, S, 3)`` or ``(U, 3, S, S)`` uint8 (tensor or
        array).  Batch k + 1 renders while the consumer works on batch k.
        """
        from concurrent.futures import ThreadPoolExecutor

        store = store.numpy() if hasattr(store, "numpy") else store
        with ThreadPoolExecutor(self.threads, thread_name_prefix="fastleaf-views") as pool:
            pending = None
            for files in batches:
                job = self.submit(pool, store, files, rng)
                if pending is not None:
                    yield collect(pending)
                pending = job
            if pending is not None:
                yield collect(pending)


def collect(job):
    out, futures = job
    for future in futures:
        future.result()          # re-raises a render error here, in the consumer
    return out
