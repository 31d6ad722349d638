"""Read run folders (``metrics.csv``, ``config.yaml``, ``classes.json``) for reports.

    run = read_run("runs/cnn-20240101-120000")
    run.best["acc"], run.config.model, [r["val_loss"] for r in run.rows]
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..config import TrainConfig
from ..errors import MissingFileError, UsageError
from ..predict.run_folder import read_folder_config
from ..train.records import EPOCH_COLUMNS, TEXT_COLUMNS, best_row
from ..utils.csv_rows import read_rows
from ..vocab import METRICS

# the paper's Table 3, plus how the speed was reached
TABLE_COLUMNS = ("run", "model", "epochs", "batch_size", "lr", "setup", "best_epoch",
                 *METRICS, "img_per_s")


@dataclass
class Run:
    path: Path
    name: str
    config: TrainConfig       # config.yaml, every option it does not record at its default
    recorded: frozenset[str]  # the options config.yaml records
    classes: list[str]
    rows: list[dict]          # metrics.csv, numbers as floats (epoch as int)

    @property
    def best(self) -> dict:
        """The epoch ``best.pt`` holds: the best by the run's own ``eval_metric``."""
        return best_row(self.rows, self.config.eval_metric)

    @property
    def model(self) -> str:
        return self.config.model


def shared_metric(runs: list[Run]) -> str:
    """The metric that ranks runs against each other: their common ``eval_metric``, else
    ``sum`` (the paper's)."""
    metrics = {run.config.eval_metric for run in runs}
    return metrics.pop() if len(metrics) == 1 else "sum"


def parse_rows(path: Path) -> list[dict]:
    """metrics.csv rows with numeric columns parsed; bad cells are named by file and row."""
    rows = read_rows(path)
    if not rows:
        raise UsageError(f"{path}: no epochs recorded")
    missing = [c for c in ("epoch", "sum") if c not in rows[0]]
    if missing:
        raise UsageError(f"{path}: missing column(s) {missing}; found {list(rows[0])}")
    parsed = []
    for line, row in enumerate(rows, 2):
        out = {}
        for key, value in row.items():
            if key not in EPOCH_COLUMNS:
                continue
            if key in TEXT_COLUMNS:
                out[key] = value or ""
                continue
            try:
                out[key] = int(value) if key == "epoch" else float(value)
            except (TypeError, ValueError):
                raise UsageError(f"{path} row {line}: {key}={value!r} is not a number") from None
        parsed.append(out)
    return parsed


def read_run(path: str | Path) -> Run:
    """Load one run folder; missing files are named in the error."""
    path = Path(path)
    if not path.is_dir():
        raise MissingFileError(f"run folder not found: {path}")
    for name in ("metrics.csv", "config.yaml"):
        if not (path / name).is_file():
            raise MissingFileError(f"{path / name}: missing (is {path} a fastleaf run folder?)")
    config, recorded = read_folder_config(path)
    classes_file = path / "classes.json"
    classes = json.loads(classes_file.read_text()) if classes_file.is_file() else []
    return Run(path, path.name, config, recorded, classes, parse_rows(path / "metrics.csv"))


def read_runs(paths) -> list[Run]:
    """Several runs; folders that share a name are told apart by their parent folder."""
    runs = [read_run(p) for p in paths]
    if not runs:
        raise UsageError("no run folders given")
    names = [r.name for r in runs]
    for run in runs:
        if names.count(run.name) > 1:
            run.name = f"{run.path.parent.name}/{run.name}"
    return runs


def setup_label(config: TrainConfig) -> str:
    """How a run computed: fp32 or amp, plus NHWC and compile when used."""
    parts = ["amp" if config.amp else "fp32"]
    if config.channels_last:
        parts.append("channels_last")
    if config.compile:
        parts.append("compile")
    return "+".join(parts)


def comparison_rows(runs: list[Run]) -> list[dict]:
    """One row per run in ``TABLE_COLUMNS`` order: settings plus the best metrics.csv row."""
    table = []
    for run in runs:
        best = run.best
        table.append({
            "run": run.name, "model": run.model, "epochs": max(r["epoch"] for r in run.rows),
            "batch_size": run.config.batch_size, "lr": run.config.lr,
            "setup": setup_label(run.config), "best_epoch": best["epoch"],
            **{k: best.get(k, float("nan")) for k in (*METRICS, "img_per_s")}})
    return table
