"""Early stopping on the run's eval metric (``--early-stop PATIENCE [--min-delta D]``).

The decision is read from the run's own epoch rows (metrics.csv), so a resumed run counts the
epochs it already trained: it stops at the same epoch as if it had never been interrupted.
"""
from __future__ import annotations


def stale_epochs(rows: list[dict], metric: str, min_delta: float = 0.0) -> tuple[int, int]:
    """(epochs since the last improvement, that epoch).

    An epoch improves when its ``metric`` beats the best so far by more than ``min_delta``
    (the first epoch always does); rows hold numbers or the strings metrics.csv gives back.
    """
    best, best_epoch, last = float("-inf"), 0, 0
    for row in sorted(rows, key=lambda r: int(r["epoch"])):
        epoch, score = int(row["epoch"]), float(row[metric])
        if best_epoch == 0 or score > best + min_delta:
            best, best_epoch = score, epoch
        last = epoch
    return last - best_epoch, best_epoch


def stop_reason(rows: list[dict], metric: str, patience: int, min_delta: float = 0.0) -> str | None:
    """Why training stops now, or None to go on (``patience`` 0: never)."""
    if patience <= 0 or not rows:
        return None
    stale, best_epoch = stale_epochs(rows, metric, min_delta)
    if stale < patience:
        return None
    better = f"by more than {min_delta:g}" if min_delta else "at all"
    return (f"early stop: {metric} has not improved {better} for {stale} epochs "
            f"(best at epoch {best_epoch}, --early-stop {patience})")
