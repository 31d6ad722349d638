"""A checkpoint's model and one image, prepared exactly as evaluation prepares them."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn

from ..data.imageio import load_image
from ..errors import MissingFileError
from ..loaders.base import norm_tensors
from ..models.data_config import DataConfig
from ..predict.run_folder import open_run


@dataclass
class LoadedModel:
    model: nn.Module          # eval mode, on the CPU
    name: str                 # the checkpoint's model_name
    img_size: int             # the input side the model was trained on
    classes: list[str]
    path: Path                # the checkpoint file
    data: DataConfig          # its normalisation


def load_model(checkpoint: str | Path) -> LoadedModel:
    """Rebuild a checkpoint's model (weights-only loading); a run folder means its best.pt."""
    run = open_run(checkpoint)
    return LoadedModel(run.build_model(), run.model_name, run.data.size, run.classes, run.path,
                       run.data)


def prepare_image(path: str | Path, size: int,
                  data: DataConfig | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(uint8 (3, S, S) for display, normalised float (1, 3, S, S) for the model);
    ``data``: the checkpoint's normalisation (ImageNet's when not given)."""
    if not Path(path).is_file():
        raise MissingFileError(f"image not found: {path}")
    image = load_image(Path(path), size)
    data = data or DataConfig()
    # the same normalisation the loaders apply on the device
    mean, std = norm_tensors(data.mean, data.std, torch.device("cpu"))
    return image, (image.unsqueeze(0).float() - mean) / std
