"""Convolution filters as pictures (the paper's Figs. 7 and 8).

* the first convolution that reads RGB: one colour tile per filter (3 x k x k -> RGB), each filter
  min-max scaled on its own, upscaled with nearest neighbours so a 7 x 7 kernel is visible;
* one filter of a deeper convolution: one grey tile per input channel (its k x k kernel).

    fastleaf viz filters --checkpoint runs/cnn/best.pt --out viz/ --layer features.4 --channel 3
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch.nn as nn

from ..errors import UsageError
from .inputs import load_model
from .plots import grey, minmax, save_image, scale_for, tile_grid, upscale

TILE_PX = 56              # kernels are upscaled to at least this many pixels a side


def conv_layers(model: nn.Module) -> list[tuple[str, nn.Conv2d]]:
    """Every ``nn.Conv2d`` of ``model`` as (name, module), in ``named_modules`` order."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]


def first_rgb_conv(model: nn.Module) -> tuple[str, nn.Conv2d]:
    """The first convolution with 3 input channels: the one that sees the image."""
    for name, conv in conv_layers(model):
        if conv.in_channels == 3:
            return name, conv
    raise UsageError(f"{type(model).__name__} has no Conv2d with 3 input channels")


def find_conv(model: nn.Module, name: str) -> nn.Conv2d:
    """The convolution called ``name``; other names get an error that lists valid ones."""
    convs = dict(conv_layers(model))
    if name not in convs:
        listed = ", ".join(list(convs)[:8]) + (" ..." if len(convs) > 8 else "")
        raise UsageError(f"no convolution named {name!r}; convolutions: {listed}")
    return convs[name]


def rgb_filter_tiles(weight: np.ndarray, min_px: int = TILE_PX) -> np.ndarray:
    """(O, 3, k, k) weights -> (O, k*s, k*s, 3) RGB tiles, each filter scaled to [0, 1] alone."""
    if weight.ndim != 4 or weight.shape[1] != 3:
        raise ValueError(f"expected (out, 3, k, k) weights, got shape {tuple(weight.shape)}")
    tiles = minmax(weight, axis=(1, 2, 3)).transpose(0, 2, 3, 1)      # (O, k, k, 3)
    return upscale(tiles, scale_for(max(weight.shape[2:]), min_px))


def kernel_tiles(weight: np.ndarray, channel: int, min_px: int = TILE_PX) -> np.ndarray:
    """Filter ``channel`` of (O, I, k, k) weights -> (I, k*s, k*s, 3) grey tiles.

    One scale for the whole filter, so a strong kernel looks strong next to a weak one.
    """
    if not 0 <= channel < weight.shape[0]:
        raise UsageError(f"filter {channel} out of range: the layer has {weight.shape[0]} filters")
    kernels = minmax(weight[channel])                                 # (I, k, k)
    return upscale(grey(kernels), scale_for(max(weight.shape[2:]), min_px))


def write_filter_figures(checkpoint: str | Path, out_dir: str | Path, layer: str | None = None,
                         channel: int = 0, tile_px: int = TILE_PX) -> list[Path]:
    """Write the first-layer RGB filter grid and one deeper filter's kernels as PNGs.

    Args:
        checkpoint: a ``.pt`` checkpoint or a run folder (its ``best.pt``).
        out_dir: folder for the PNGs.
        layer: convolution whose filter ``channel`` is drawn in grey; default the second
            convolution (skipped when the model has only one).
        channel: which filter of ``layer``.
        tile_px: kernels are upscaled to at least this many pixels a side.

    Returns:
        The written paths: ``filters_<first conv>.png`` then ``kernels_<layer>_f<channel>.png``.
    """
    loaded = load_model(checkpoint)
    out_dir = Path(out_dir)
    first_name, first = first_rgb_conv(loaded.model)
    weight = first.weight.detach().float().cpu().numpy()
    paths = [save_image(tile_grid(rgb_filter_tiles(weight, tile_px)),
                        out_dir / f"filters_{first_name}.png")]
    if layer is None:
        later = [n for n, _ in conv_layers(loaded.model) if n != first_name]
        layer = later[0] if later else None
    if layer is not None:
        deep = find_conv(loaded.model, layer).weight.detach().float().cpu().numpy()
        paths.append(save_image(tile_grid(kernel_tiles(deep, channel, tile_px)),
                                out_dir / f"kernels_{layer}_f{channel}.png"))
    return paths
