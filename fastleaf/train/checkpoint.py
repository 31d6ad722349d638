"""Checkpoints are plain dicts of tensors and primitives, written atomically.

``torch.load(weights_only=True)`` reads them, so loading never runs pickled code;
:func:`fastleaf.predict.run_folder.open_run` turns one back into its config and model.

    {"format": 1, "model_name": "cnn", "model": state_dict, "classes": [...],
     "config": {...}, "epoch": 3, "metrics": {"acc": ..}, "best_score": 2.1,
     # last.pt only: "optimizer", "scheduler", "scaler", "rng"}
"""
from __future__ import annotations

import threading
from pathlib import Path

import torch

from ..errors import FastleafError, refusal_reason
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


def snapshot(value, memo: dict | None = None):
    """``value`` with every tensor copied to the CPU: training may change the originals in place
    while the copy is written.  A tensor reached twice (the model in best.pt and in last.pt)
    is copied once."""
    memo = {} if memo is None else memo
    if isinstance(value, torch.Tensor):
        if id(value) not in memo:
            memo[id(value)] = value.detach().to("cpu", copy=True)
        return memo[id(value)]
    if isinstance(value, dict):
        return {k: snapshot(v, memo) for k, v in value.items()}
    if type(value) in (list, tuple):
        return type(value)(snapshot(v, memo) for v in value)
    return value


class CheckpointWriter:
    """Writes one epoch's checkpoints in a background thread, off the training's critical path.

    ``save`` first waits for the previous epoch's files (one write at a time, in order), takes
    CPU copies of the states, and returns while a thread writes them, each atomically as
    :func:`save_checkpoint` does.  ``wait`` joins the thread and raises what it raised; a run
    calls it before it reports itself finished and on every way out, so a stopped run leaves
    its files complete.
    """

    def __init__(self) -> None:
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def save(self, files: list[tuple[Path, dict]]) -> None:
        self.wait()
        memo: dict = {}
        copies = [(path, snapshot(state, memo)) for path, state in files]
        self.thread = threading.Thread(target=self.write, args=(copies,),
                                       name="checkpoint-writer")
        self.thread.start()

    def write(self, files: list[tuple[Path, dict]]) -> None:
        try:
            for path, state in files:
                save_checkpoint(path, state)
        except BaseException as err:       # raised again in the training thread by wait()
            self.error = err

    def wait(self) -> None:
        if self.thread is not None:
            self.thread.join()
            self.thread = None
        if self.error is not None:
            error, self.error = self.error, None
            raise error


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
                              f"(it may carry pickled code, or be damaged): {refusal_reason(err)}") from None
    if not isinstance(state, dict) or "model" not in state or "model_name" not in state:
        raise CheckpointError(f"{path}: not a fastleaf checkpoint (no model/model_name entries)")
    return state
