"""A checkpoint's model and one image, prepared exactly as evaluation prepares them."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn

from ..data.augment import AugmentSpec
from ..data.imageio import load_image
from ..loaders.base import norm_tensors
from ..train.checkpoint import load_checkpoint, model_from_checkpoint


@dataclass
class LoadedModel:
    model: nn.Module          # eval mode, on the CPU
    name: str                 # the checkpoint's model_name
    img_size: int             # the input side the model was trained on
    classes: list[str]
    path: Path


def load_model(checkpoint: str | Path) -> LoadedModel:
    """Rebuild a checkpoint's model (weights-only loading); a run folder means its best.pt."""
    state = load_checkpoint(checkpoint)
    size = int(state.get("config", {}).get("img_size", 224))
    return LoadedModel(model_from_checkpoint(state), state["model_name"], size,
                       list(state["classes"]), Path(checkpoint))


def prepare_image(path: str | Path, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(uint8 (3, S, S) for display, normalised float (1, 3, S, S) for the model)."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"image not found: {path}")
    image = load_image(Path(path), size)
    spec = AugmentSpec.eval_preset(size)
    # the same normalisation the loaders apply on the device
    mean, std = norm_tensors(spec.mean, spec.std, torch.device("cpu"))
    return image, (image.unsqueeze(0).float() - mean) / std
