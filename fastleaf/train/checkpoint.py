"""Checkpoints are plain dicts of tensors and primitives, written atomically.

``torch.load(weights_only=True)`` reads them, so loading never runs pickled code;
:func:`fastleaf.predict.run_folder.open_run` turns one back into its config and model.

    {"format": 1, "model_name": "cnn", "model": state_dict, "classes": [...],
     "config": {...}, "epoch": 3, "metrics": {"acc": ..}, "best_score": 2.1,
     # last.pt only: "optimizer", "scheduler", "scaler", "rng"}
"""
from __future__ import annotations

from pathlib import Path

import torch

from ..errors import FastleafError
from ..utils.atomic import atomic_path

FORMAT = 1


class CheckpointError(FastleafError, ValueError):
    pass


def save_checkpoint(path: str | Path, state: dict) -> None:
    # through a Python file: a full disk surfaces as OSError(ENOSPC), which atomic_path words
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        try:
            torch.save({"format": FORMAT, **state}, f)
        except RuntimeError as err:
            # torch's zip writer turns the file's OSError into "unexpected pos": raise the cause
            if isinstance(err.__context__, OSError):
                raise err.__context__ from None
            raise


def load_checkpoint(path: str | Path, map_location="cpu") -> dict:
    path = Path(path)
    if path.is_dir():
        path = path / "best.pt"
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        raise CheckpointError(f"{path}: refused to load: not a plain weights-only checkpoint "
                              f"(it may carry pickled code, or be damaged): {why(err)}") from None
    if not isinstance(state, dict) or "model" not in state or "model_name" not in state:
        raise CheckpointError(f"{path}: not a fastleaf checkpoint (no model/model_name entries)")
    return state


def why(err: Exception) -> str:
    """The reason in PyTorch's refusal, without its advice to load with ``weights_only=False``
    (which would run whatever code the file carries)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    reasons = [line for line in lines if "weights_only" not in line.lower()
               and not line.startswith(("Weights only load failed", "Check the documentation"))]
    return reasons[0][:300] if reasons else type(err).__name__

