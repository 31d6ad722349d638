"""Checkpoints are plain dicts of tensors and primitives, written atomically.

``torch.load(weights_only=True)`` reads them, so loading never runs pickled code.

    {"format": 1, "model_name": "cnn", "model": state_dict, "classes": [...],
     "config": {...}, "epoch": 3, "metrics": {"acc": ..}, "best_score": 2.1,
     # last.pt only: "optimizer", "scheduler", "scaler", "rng"}
"""
from __future__ import annotations

from pathlib import Path

import torch

from ..utils.atomic import atomic_path

FORMAT = 1


class CheckpointError(ValueError):
    pass


def save_checkpoint(path: str | Path, state: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save({"format": FORMAT, **state}, tmp)


def load_checkpoint(path: str | Path, map_location="cpu") -> dict:
    path = Path(path)
    if path.is_dir():
        path = path / "best.pt"
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        first = str(err).strip().splitlines()[0][:300] if str(err).strip() else type(err).__name__
        raise CheckpointError(f"{path}: refused to load: not a plain weights-only checkpoint "
                              f"(it may carry pickled code, or be damaged): {first}") from None
    if not isinstance(state, dict) or "model" not in state or "model_name" not in state:
        raise CheckpointError(f"{path}: not a fastleaf checkpoint (no model/model_name entries)")
    return state


def model_from_checkpoint(state: dict):
    """Rebuild the model a checkpoint was trained as, with its weights, in eval mode."""
    from ..models import create_model

    config = state.get("config", {})
    model = create_model(state["model_name"], len(state["classes"]),
                         finetune_all=bool(config.get("finetune_all", False)))
    model.load_state_dict(state["model"])
    return model.eval()
