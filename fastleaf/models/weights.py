"""Load a local state dict (``.safetensors``, ``.pth``/``.pt`` or a fastleaf checkpoint) into a model.

Works offline: this is how pretrained ImageNet weights reach a machine without hub access.
Keys are matched as they are, or under the model's ``backbone.`` prefix (a timm DeiT state dict
into fastleaf's ``deit_tiny``); tensors whose shape differs (a 1000-class head) are skipped.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn

STRIP_PREFIXES = ("module.", "_orig_mod.")


@dataclass
class LoadReport:
    loaded: int
    skipped_shape: list[str]
    missing: list[str]
    unexpected: list[str]

    def summary(self) -> str:
        return (f"loaded {self.loaded} tensors; {len(self.skipped_shape)} skipped (shape), "
                f"{len(self.missing)} left at init, {len(self.unexpected)} unused")


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(f"{path}: not a weights-only state dict ({type(err).__name__}: "
                         f"{str(err).splitlines()[0][:200]})") from None
    if isinstance(obj, dict) and isinstance(obj.get("model"), dict):
        obj = obj["model"]                        # a fastleaf checkpoint
    elif isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{path}: expected a state dict of tensors")
    return obj


def strip_prefixes(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in state.items():
        for prefix in STRIP_PREFIXES:
            while key.startswith(prefix):
                key = key[len(prefix):]
        out[key] = value
    return out


def load_weights(model: nn.Module, path: str | Path, strict: bool = False) -> LoadReport:
    """Copy matching tensors from ``path`` into ``model``; raise if none match."""
    state = strip_prefixes(read_state_dict(path))
    own = model.state_dict()
    if sum(k in own for k in state) < sum(f"backbone.{k}" in own for k in state):
        state = {f"backbone.{k}": v for k, v in state.items()}
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    skipped = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
    if not usable:
        raise ValueError(f"{path}: no tensor matches the model's parameters "
                         f"(first keys: {list(state)[:3]})")
    result = model.load_state_dict(usable, strict=False)
    report = LoadReport(len(usable), skipped, list(result.missing_keys),
                        [k for k in state if k not in own])
    if strict and (report.missing or report.skipped_shape or report.unexpected):
        raise ValueError(f"{path}: does not match the model exactly: {report.summary()}")
    return report
