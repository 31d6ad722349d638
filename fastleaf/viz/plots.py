"""Tile grids and figure saving shared by every figure: pixel sizes follow from the inputs.

A grid of ``n`` tiles of ``(h, w)`` pixels has ``grid_shape(n)`` rows and columns and
``grid_pixels(...)`` total size: tiles separated and framed by ``pad`` pixels of background.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..utils.atomic import atomic_path

DPI = 100                 # charts: pixel size = figsize (inches) x DPI
PAD = 2                   # pixels between tiles and around the grid
BACKGROUND = 1.0          # white between tiles


def pyplot():
    """matplotlib.pyplot on the Agg backend (files only, never a window)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def grid_shape(n: int, cols: int | None = None) -> tuple[int, int]:
    """(rows, cols) for ``n`` tiles: a near-square grid, e.g. 16 -> (4, 4), 6 -> (2, 3)."""
    if n < 1:
        raise ValueError(f"need at least one tile, got {n}")
    cols = cols or math.ceil(math.sqrt(n))
    return math.ceil(n / cols), cols


def grid_pixels(n: int, tile_h: int, tile_w: int, pad: int = PAD,
                cols: int | None = None) -> tuple[int, int]:
    """(height, width) in pixels of the grid :func:`tile_grid` builds."""
    rows, cols = grid_shape(n, cols)
    return rows * tile_h + (rows + 1) * pad, cols * tile_w + (cols + 1) * pad


def tile_grid(tiles: np.ndarray, cols: int | None = None, pad: int = PAD) -> np.ndarray:
    """Lay ``tiles`` (N, h, w, 3) with values in [0, 1] out as one (H, W, 3) image."""
    n, h, w = tiles.shape[:3]
    rows, cols = grid_shape(n, cols)
    height, width = grid_pixels(n, h, w, pad, cols)
    out = np.full((height, width, 3), BACKGROUND, dtype=np.float32)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, cols)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        out[y:y + h, x:x + w] = tile
    return out


def minmax(x: np.ndarray, axis=None) -> np.ndarray:
    """Scale to [0, 1] over ``axis`` (None: the whole array); constant slices become 0.5."""
    lo = x.min(axis=axis, keepdims=True)
    hi = x.max(axis=axis, keepdims=True)
    span = hi - lo
    return np.where(span > 0, (x - lo) / np.where(span > 0, span, 1), 0.5).astype(np.float32)


def upscale(tiles: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour upscale of (N, h, w, ...) so small kernels stay visible as blocks."""
    if factor <= 1:
        return tiles
    return tiles.repeat(factor, axis=1).repeat(factor, axis=2)


def scale_for(side: int, min_px: int) -> int:
    """Integer nearest-neighbour factor that brings ``side`` to at least ``min_px`` pixels."""
    return max(1, math.ceil(min_px / max(side, 1)))


def colorize(values: np.ndarray, cmap: str = "viridis") -> np.ndarray:
    """(..., ) values in [0, 1] -> (..., 3) RGB through a matplotlib colour map."""
    import matplotlib

    return matplotlib.colormaps[cmap](values)[..., :3].astype(np.float32)


def grey(values: np.ndarray) -> np.ndarray:
    """(..., ) values in [0, 1] -> (..., 3) grey levels."""
    return np.repeat(values[..., None], 3, axis=-1).astype(np.float32)


def save_image(image: np.ndarray, path: str | Path) -> Path:
    """Write an (H, W, 3) float [0, 1] image as a PNG of exactly H x W pixels, atomically."""
    plt = pyplot()
    path = Path(path)
    with atomic_path(path) as tmp:
        plt.imsave(tmp, np.clip(image, 0.0, 1.0), format="png")
    return path


def save_figure(fig, path: str | Path) -> Path:
    """Write a matplotlib figure as a PNG of figsize x DPI pixels (no tight bbox), then close it."""
    plt = pyplot()
    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=DPI)
    finally:
        plt.close(fig)
    return path
