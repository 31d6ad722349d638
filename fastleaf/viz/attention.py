"""Where a vision transformer looks: attention rollout of the class token.

Attention rollout (Abnar & Zuidema, "Quantifying Attention Flow in Transformers", 2020):
average each layer's attention over heads, add the identity (the residual path), renormalise
the rows, and multiply the layers together; the class token's row over the patch tokens,
reshaped to the patch grid, says how much each patch fed the class token.

The probabilities are caught from timm's ``Attention`` modules: fused attention is switched
off for the pass, so the softmaxed matrix goes through ``attn_drop``, where a hook reads it.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import UsageError
from .plots import colorize, minmax, save_image, tile_grid

ALPHA = 0.5               # weight of the heat map in the overlay


def attention_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """timm-style self-attention modules (``qkv``, ``num_heads``, ``attn_drop``, ``fused_attn``)."""
    return [(n, m) for n, m in model.named_modules()
            if all(hasattr(m, a) for a in ("qkv", "num_heads", "attn_drop", "fused_attn"))]


@torch.no_grad()
def capture_attention(model: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """Attention probabilities ``(B, heads, N, N)`` of every layer, in execution order."""
    modules = [m for _, m in attention_modules(model)]
    if not modules:
        raise UsageError(f"{type(model).__name__} has no timm attention modules")
    maps: list[torch.Tensor] = []
    fused = [m.fused_attn for m in modules]
    handles = [m.attn_drop.register_forward_hook(
        lambda _mod, _inp, out: maps.append(out.detach().float().cpu())) for m in modules]
    try:
        for m in modules:
            m.fused_attn = False          # the fused kernel never materialises the matrix
        model.eval()(x)
    finally:
        for m, flag in zip(modules, fused):
            m.fused_attn = flag
        for handle in handles:
            handle.remove()
    return maps


def attention_rollout(maps: list[torch.Tensor]) -> torch.Tensor:
    """Rolled-out attention ``(N, N)`` of the first image from per-layer ``(B, heads, N, N)``."""
    n = maps[0].shape[-1]
    eye = torch.eye(n)
    rollout = eye
    for layer in maps:
        a = layer[0].mean(0) + eye                    # (N, N): heads averaged, residual added
        a = a / a.sum(-1, keepdim=True)
        rollout = a @ rollout
    return rollout


def patch_grid(model: nn.Module, tokens: int) -> tuple[int, int, int]:
    """(prefix tokens, grid rows, grid cols) of a ViT whose sequence has ``tokens`` tokens."""
    for m in model.modules():
        if hasattr(m, "patch_embed") and hasattr(m, "num_prefix_tokens"):
            rows, cols = m.patch_embed.grid_size
            return int(m.num_prefix_tokens), int(rows), int(cols)
    side = math.isqrt(tokens - 1)                     # assume one class token, square grid
    if side * side != tokens - 1:
        raise ValueError(f"cannot lay {tokens} tokens out as a class token + square patch grid")
    return 1, side, side


def cls_heatmap(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    """(S, S) in [0, 1]: the class token's rollout over patches, upsampled to the input size."""
    rollout = attention_rollout(capture_attention(model, x))
    prefix, rows, cols = patch_grid(model, rollout.shape[0])
    cls = rollout[0, prefix:].reshape(1, 1, rows, cols)
    heat = F.interpolate(cls, size=tuple(x.shape[-2:]), mode="bilinear", align_corners=False)
    return minmax(heat[0, 0].numpy())


def write_attention(model: nn.Module, x: torch.Tensor, pixels: torch.Tensor,
                    path: str | Path) -> Path:
    """Save the image and its rollout overlay side by side: ``(S + 2p, 2S + 3p)`` pixels."""
    image = pixels.permute(1, 2, 0).numpy().astype(np.float32) / 255.0   # (S, S, 3)
    heat = colorize(cls_heatmap(model, x), "jet")
    overlay = (1 - ALPHA) * image + ALPHA * heat
    return save_image(tile_grid(np.stack([image, overlay]), cols=2), path)
