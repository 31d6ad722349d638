"""The K best epochs of a run, kept for weight averaging; and their average as a checkpoint.

    fastleaf train --data DIR --keep-top 3 --eval-metric acc --out runs/r18
    # -> runs/r18/top/epoch007.pt ... and runs/r18/top.json (epoch, score, file), best first
    fastleaf average-checkpoints runs/r18 --top 3
    # -> runs/r18/average-top3.pt, accepted wherever a checkpoint is (tta-predict, evaluate, ...)

The average is a uniform mean of the weights (stochastic weight averaging over the best epochs,
Izmailov et al. 2018).  Batch-norm running statistics are averaged like the weights rather
than recomputed, which is close when the averaged epochs are near each other.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from ..errors import UsageError
from ..utils.atomic import write_text_atomic
from ..vocab import METRICS
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint

LEDGER = "top.json"


def check_metric(name: str) -> str:
    if name not in METRICS:
        raise UsageError(f"--eval-metric {name!r}: use one of {', '.join(METRICS)}")
    return name


def read_top(run_dir: str | Path) -> list[dict]:
    """The ledger, best first: ``[{"epoch", "score", "metric", "file"}, ...]``."""
    path = Path(run_dir) / LEDGER
    if not path.is_file():
        return []
    entries = json.loads(path.read_text())
    if not isinstance(entries, list):
        raise CheckpointError(f"{path}: expected a list of kept epochs")
    return entries


def update_top(run_dir: str | Path, keep: int, epoch: int, score: float, metric: str,
               state: dict) -> list[dict]:
    """Offer ``epoch`` (scored ``score``) to the run's top ``keep``; returns the new ledger.

    Entries of ``epoch`` or later are replaced: a resumed run redoes those epochs.  The ledger
    is rewritten before files leave, so it never names a checkpoint that is gone.
    """
    run_dir = Path(run_dir)
    old = read_top(run_dir)
    entries = [e for e in old if e["epoch"] < epoch]
    entries.append({"epoch": int(epoch), "score": float(score), "metric": metric,
                    "file": f"top/epoch{epoch:03d}.pt"})
    # ties go to the later epoch: it has trained longer on the same score
    entries.sort(key=lambda e: (-e["score"], -e["epoch"]))
    kept = entries[:keep]
    if any(e["epoch"] == epoch for e in kept):
        save_checkpoint(run_dir / kept[[e["epoch"] for e in kept].index(epoch)]["file"], state)
    write_text_atomic(run_dir / LEDGER, json.dumps(kept, indent=1) + "\n")
    keep_files = {e["file"] for e in kept}
    for e in old + entries:
        if e["file"] not in keep_files:
            (run_dir / e["file"]).unlink(missing_ok=True)
    return kept


def average_states(states: list[dict]) -> dict:
    """Element-wise mean of the models' float tensors; integer buffers (batch-norm step
    counters) are taken from the first, i.e. the best, state."""
    first = states[0]["model"]
    for other in states[1:]:
        if other["model"].keys() != first.keys():
            raise CheckpointError("the kept checkpoints hold different parameters; "
                                  "they cannot be averaged")
    averaged = {}
    for key, tensor in first.items():
        if tensor.is_floating_point():
            stacked = torch.stack([s["model"][key].float() for s in states])
            averaged[key] = stacked.mean(0).to(tensor.dtype)
        else:
            averaged[key] = tensor.clone()
    return averaged


def average_checkpoints(run_dir: str | Path, top: int, out: str | Path | None = None) -> Path:
    """Average the weights of the run's ``top`` best kept epochs into one checkpoint.

    Args:
        run_dir: a run trained with ``--keep-top K`` (K >= ``top``).
        top: how many of the best kept epochs to average.
        out: the checkpoint to write (default ``RUN/average-top{top}.pt``).
    Returns:
        the path written.
    """
    run_dir = Path(run_dir)
    entries = read_top(run_dir)
    if top < 1:
        raise UsageError(f"--top must be at least 1, got {top}")
    if len(entries) < top:
        raise CheckpointError(f"{run_dir}: {len(entries)} kept epoch(s) in {LEDGER}, asked to "
                              f"average {top}; train with --keep-top {top} or more")
    chosen = entries[:top]
    states = [load_checkpoint(run_dir / e["file"]) for e in chosen]
    if any(s["classes"] != states[0]["classes"] or s["model_name"] != states[0]["model_name"]
           for s in states):
        raise CheckpointError(f"{run_dir}: the kept checkpoints are of different models")
    best = states[0]
    state = {key: best[key] for key in ("model_name", "classes", "config")}
    state.update(model=average_states(states), epoch=max(e["epoch"] for e in chosen),
                 metrics={}, best_score=float("nan"),
                 averaged_epochs=[int(e["epoch"]) for e in chosen],
                 averaged_scores=[float(e["score"]) for e in chosen])
    path = Path(out) if out else run_dir / f"average-top{top}.pt"
    save_checkpoint(path, state)
    return path
