"""Run records: ``metrics.csv`` (a row per epoch), TensorBoard scalars, ``runs/scores.csv``."""
from __future__ import annotations

import fcntl
import math
from contextlib import contextmanager
from pathlib import Path

from ..utils.csv_rows import read_rows, write_rows
from ..vocab import METRICS

EPOCH_COLUMNS = ("epoch", "train_loss", "val_loss", *METRICS, "img_per_s", "val_img_per_s", "lr",
                 "time_s", "note")
TEXT_COLUMNS = ("note",)      # words, not numbers (why a run ended at that epoch)
SCORE_COLUMNS = ("run", "model", "epochs", "batch_size", "lr", "amp", "channels_last",
                 "best_epoch", *METRICS, "img_per_s", "finished")


def row_score(row: dict, metric: str) -> float:
    """What ranks an epoch for best.pt: its ``metric``; a run without validation (NaN metrics)
    ranks by the epoch itself, so its latest epoch is the best."""
    value = float(row.get(metric, math.nan))
    return float(row["epoch"]) if math.isnan(value) else value


def best_row(rows: list[dict], metric: str) -> dict:
    """The epoch ``best.pt`` holds: the highest :func:`row_score`, the earliest of equal ones
    (the trainer replaces best.pt only on a strictly higher score)."""
    if not rows:
        raise ValueError("no epochs recorded")
    return max(rows, key=lambda r: (row_score(r, metric), -int(r["epoch"])))


class RunRecorder:
    """metrics.csv + TensorBoard for one run folder; rank 0 only."""

    def __init__(self, run_dir: Path, tensorboard: bool = True, purge_step: int | None = None,
                 columns: tuple[str, ...] = EPOCH_COLUMNS, tracker=None):
        self.run_dir = Path(run_dir)
        self.columns = columns      # EPOCH_COLUMNS, plus the raw-vs-average ones with an EMA
        self.tracker = tracker      # an MLflow run (train/tracking.py) or None
        self.metrics_csv = self.run_dir / "metrics.csv"
        # keep rows of epochs already finished (resume): drop any at or past a restart point
        self.rows = read_rows(self.metrics_csv)
        self.writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            # purge_step hides events a resumed run writes again from the epoch it restarts at
            self.writer = SummaryWriter(log_dir=str(self.run_dir / "tb"), purge_step=purge_step)

    def truncate(self, last_epoch: int) -> None:
        self.rows = [r for r in self.rows if int(r["epoch"]) <= last_epoch]
        write_rows(self.metrics_csv, self.columns, self.rows)

    def log_epoch(self, row: dict) -> None:
        self.rows = [r for r in self.rows if int(r["epoch"]) < row["epoch"]] + [row]
        write_rows(self.metrics_csv, self.columns, self.rows)
        if self.writer is not None:
            step = row["epoch"]
            for tag, key in (("loss/train", "train_loss"), ("loss/val", "val_loss"),
                             *((f"val/{m}", m) for m in METRICS), ("lr", "lr"),
                             ("speed/train_img_per_s", "img_per_s")):
                self.writer.add_scalar(tag, float(row[key]), step)
            for key in ("raw_acc", "ema_acc"):
                if key in row:
                    self.writer.add_scalar(f"val/{key}", float(row[key]), step)
            self.writer.flush()
        if self.tracker is not None:
            self.tracker.log_epoch(row)

    def note(self, text: str) -> None:
        """Put ``text`` in the last epoch row's ``note`` (why the run ended there)."""
        if self.rows:
            self.rows[-1]["note"] = text
            write_rows(self.metrics_csv, self.columns, self.rows)

    def close(self, status: str = "FINISHED") -> None:
        """``status``: FINISHED, KILLED (interrupted) or FAILED, as the tracker records it."""
        if self.writer is not None:
            self.writer.close()
        if self.tracker is not None:
            self.tracker.finish(status)


@contextmanager
def locked(path: Path):
    """An exclusive ``fcntl`` lock on ``path.lock``: runs finishing together take turns."""
    lock = Path(path).with_name(Path(path).name + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def append_score(scores_csv: Path, row: dict) -> None:
    """One summary row per run in ``runs/scores.csv`` (a run re-recorded replaces its row).

    The read-modify-write happens under a lock, so concurrent runs never drop each other's row.
    """
    with locked(scores_csv):
        rows = [r for r in read_rows(scores_csv) if r.get("run") != row["run"]] + [row]
        write_rows(scores_csv, SCORE_COLUMNS, rows)
