"""Feature maps of one image (the paper's Figs. 10-12), caught with forward hooks.

By default: the output of the first convolution, of each layer after it (ReLU, BatchNorm,
MaxPool) and of the second convolution, one grid each, one tile per channel (at most 64).
Vision transformers get the class token's attention rollout instead (see ``attention``).

    fastleaf viz feature-maps --checkpoint runs/cnn/best.pt --image leaf.jpg --out viz/
    fastleaf viz feature-maps --checkpoint runs/cnn --image leaf.jpg --layer features.8
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from ..errors import UsageError
from .attention import attention_modules, write_attention
from .filters import conv_layers, first_rgb_conv
from .inputs import load_model, prepare_image
from .plots import colorize, minmax, save_image, scale_for, tile_grid, upscale

MAX_CHANNELS = 64         # tiles per grid
TILE_PX = 48              # small maps are upscaled to at least this many pixels a side


def check_layers(model: nn.Module, names: list[str]) -> None:
    """Refuse unknown module names with a list of some valid ones."""
    known = dict(model.named_modules())
    unknown = [n for n in names if n not in known]
    if unknown:
        some = [n for n in known if n][:12]
        raise UsageError(f"no layer named {unknown[0]!r}; layers include: {', '.join(some)}, ... "
                         f"({len(known) - 1} in all, see model.named_modules())")


@torch.no_grad()
def capture_outputs(model: nn.Module, x: torch.Tensor,
                    names: list[str] = ()) -> dict[str, torch.Tensor]:
    """Outputs of every leaf module and of ``names``, keyed by name in the order they ran.

    A module called twice keeps its first output.  Outputs are cloned: an in-place ReLU
    would otherwise overwrite the convolution output caught before it.
    """
    check_layers(model, list(names))
    wanted = set(names)
    outputs: dict[str, torch.Tensor] = {}

    def hook_for(name):
        def hook(_module, _inputs, output):
            if isinstance(output, torch.Tensor) and name not in outputs:
                outputs[name] = output.detach().float().cpu().clone()
        return hook

    handles = [m.register_forward_hook(hook_for(n)) for n, m in model.named_modules()
               if n in wanted or (n and next(m.children(), None) is None)]
    try:
        model.eval()(x)
    finally:
        for handle in handles:
            handle.remove()
    return outputs


def default_layers(model: nn.Module, order: list[str]) -> list[str]:
    """From the first RGB convolution through the next convolution, in execution order."""
    first, _ = first_rgb_conv(model)
    convs = {n for n, _ in conv_layers(model)}
    start = order.index(first)
    after = [i for i in range(start + 1, len(order)) if order[i] in convs]
    stop = after[0] if after else start
    return order[start:stop + 1]


def feature_grid(fmap: torch.Tensor, max_channels: int = MAX_CHANNELS, min_px: int = TILE_PX,
                 cmap: str = "viridis") -> np.ndarray:
    """(1, C, H, W) activations -> an RGB grid of the first ``max_channels`` channels.

    Each channel is scaled to [0, 1] on its own: the grid shows where each one fires.
    """
    if fmap.dim() != 4:
        raise ValueError(f"expected a (B, C, H, W) feature map, got shape {tuple(fmap.shape)}")
    maps = fmap[0, :max_channels].numpy()                      # (C, H, W)
    tiles = colorize(minmax(maps, axis=(1, 2)), cmap)          # (C, H, W, 3)
    return tile_grid(upscale(tiles, scale_for(max(maps.shape[1:]), min_px)))


def write_feature_maps(checkpoint: str | Path, image: str | Path, out_dir: str | Path,
                       layers: list[str] | None = None, max_channels: int = MAX_CHANNELS,
                       tile_px: int = TILE_PX) -> list[Path]:
    """Write the input, feature-map grids and, for transformers, the attention rollout.

    Args:
        checkpoint: a ``.pt`` checkpoint or a run folder (its ``best.pt``).
        image: any image file; resized to the checkpoint's ``img_size``.
        out_dir: folder for the PNGs.
        layers: ``model.named_modules()`` names; default the first conv block (CNNs) or
            none (transformers, which get the rollout).
        max_channels: tiles per grid.
        tile_px: small maps are upscaled to at least this many pixels a side.

    Returns:
        The written paths: ``input.png``, ``featmap_<NN>_<layer>.png``...,
        ``attention_rollout.png``.
    """
    loaded = load_model(checkpoint)
    pixels, x = prepare_image(image, loaded.img_size, loaded.data)
    out_dir = Path(out_dir)
    paths = [save_image(pixels.permute(1, 2, 0).numpy() / 255.0, out_dir / "input.png")]
    is_vit = bool(attention_modules(loaded.model))
    if layers or not is_vit:
        outputs = capture_outputs(loaded.model, x, layers or ())
        chosen = layers or default_layers(loaded.model, list(outputs))
        for i, name in enumerate(chosen):
            if name not in outputs:
                raise ValueError(f"layer {name!r} did not run in the forward pass")
            if outputs[name].dim() != 4:
                raise ValueError(f"layer {name!r} gives shape {tuple(outputs[name].shape)}; "
                                 f"feature maps need a (B, C, H, W) output")
            grid = feature_grid(outputs[name], max_channels, tile_px)
            paths.append(save_image(grid, out_dir / f"featmap_{i:02d}_{name or 'model'}.png"))
    if is_vit:
        paths.append(write_attention(loaded.model, x, pixels, out_dir / "attention_rollout.png"))
    return paths
