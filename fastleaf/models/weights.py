"""Load a local state dict (``.safetensors``, ``.pth``/``.pt`` or a fastleaf checkpoint) into a model.

Works offline: this is how pretrained ImageNet weights reach a machine without hub access.
The file's layout is detected and converted by an explicit key map (:mod:`.convert`):
EfficientNet-PyTorch, torchvision ResNet/VGG, a fastleaf checkpoint or timm's own names.
Keys are matched as they are, or under the model's ``backbone.`` prefix (a timm DeiT state dict
into fastleaf's ``deit_tiny``); tensors whose shape differs (a 1000-class head) are skipped.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn

from ..errors import MissingFileError, UsageError, refusal_reason
from .convert import convert_state, detect_layout

STRIP_PREFIXES = ("module.", "_orig_mod.")
BACKBONE = "backbone."


@dataclass
class LoadReport:
    loaded: int
    skipped_shape: list[str]
    missing: list[str]
    unexpected: list[str]
    layout: str = "timm"

    def summary(self) -> str:
        return (f"{self.layout} layout; loaded {self.loaded} tensors; "
                f"{len(self.skipped_shape)} skipped (shape), {len(self.missing)} left at init, "
                f"{len(self.unexpected)} unused")


def read_weights(path: str | Path) -> dict:
    """A state dict of tensors, or a whole fastleaf checkpoint (a dict with ``model``)."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"weights file not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as err:    # SafetensorError, or a header that is not JSON
            raise UsageError(f"{path}: not a readable .safetensors file ({refusal_reason(err)})") from None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        # refusal_reason(): PyTorch's reason without its advice to load with weights_only=False
        raise UsageError(f"{path}: refused: not a weights-only state dict ({refusal_reason(err)})") \
            from None
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    tensors = obj.get("model") if isinstance(obj, dict) and isinstance(obj.get("model"), dict) \
        else obj
    if not isinstance(tensors, dict) or not all(isinstance(v, torch.Tensor)
                                                for v in tensors.values()):
        raise UsageError(f"{path}: expected a state dict of tensors")
    return obj


def strip_prefixes(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in state.items():
        for prefix in STRIP_PREFIXES:
            while key.startswith(prefix):
                key = key[len(prefix):]
        out[key] = value
    return out


def convert_for(model: nn.Module, obj: dict):
    """(layout, converted state in the model's keys, unknown source keys, shape mismatches)."""
    layout = detect_layout(obj)
    source = strip_prefixes(obj["model"] if layout == "fastleaf" else obj)
    own = model.state_dict()
    best = None
    # as they are, or under backbone. (a timm backbone's weights into a model with a new head)
    for prefix in ("", BACKBONE):
        target = {k[len(prefix):]: v for k, v in own.items() if k.startswith(prefix)}
        converted, unknown, mismatch = convert_state(source, layout if layout != "fastleaf"
                                                     else "timm", target)
        if best is None or len(converted) > len(best[1]):
            best = (prefix, converted, unknown, mismatch)
    prefix, converted, unknown, mismatch = best
    return (layout, {prefix + k: v for k, v in converted.items()}, unknown,
            [prefix + k for k in mismatch])


def load_state(model: nn.Module, obj: dict, name: str, strict: bool = False) -> LoadReport:
    """Copy the tensors of ``obj`` (any known layout) into ``model``; raise if none match."""
    layout, usable, unknown, mismatch = convert_for(model, obj)
    if not usable:
        first = list(obj["model"] if layout == "fastleaf" else obj)[:3]
        raise UsageError(f"{name}: no tensor matches the model's parameters "
                         f"({layout} layout; first keys: {first})")
    result = model.load_state_dict(usable, strict=False)
    report = LoadReport(len(usable), mismatch, list(result.missing_keys), unknown, layout)
    if strict and (report.missing or report.skipped_shape or report.unexpected):
        raise UsageError(f"{name}: does not match the model exactly: {report.summary()}")
    return report


def load_weights(model: nn.Module, path: str | Path, strict: bool = False) -> LoadReport:
    """Copy matching tensors from the file ``path`` into ``model``; raise if none match."""
    return load_state(model, read_weights(path), str(path), strict)
