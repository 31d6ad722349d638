"""k-fold training: one model per stratified fold, then the mean ± std of the folds' best rows,
then each fold's held-out rows predicted by its model (out-of-fold predictions).

    fastleaf train --data data/classify-leaves --folds 5 --out runs/kfold
    # -> runs/kfold/fold0 .. fold4 (each a run folder with best.pt), runs/kfold/folds.csv,
    #    runs/kfold/oof.csv + oof_probs.npy (every training row predicted by the fold that
    #    held it out) and the CV accuracy / F1 / kappa over all rows (fastleaf.predict.oof)
    fastleaf tta-predict --data data/classify-leaves --checkpoint runs/kfold --tta flips

The workflow trains (:mod:`fastleaf.train`) and then predicts (:mod:`fastleaf.predict`), so it
sits above both, and training never needs to import prediction.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Callable

import numpy as np
from rich.table import Table

from .config import TrainConfig
from .errors import UsageError
from .predict.oof import OutOfFold, predict_out_of_fold, write_out_of_fold
from .train.trainer import RunResult, fit
from .utils.console import console
from .utils.csv_rows import write_rows
from .vocab import METRICS

FOLD_METRICS = ("val_loss", *METRICS, "img_per_s")
FOLD_COLUMNS = ("fold", "run", "best_epoch", *FOLD_METRICS)


@dataclass
class FoldsResult:
    out_dir: Path
    runs: list[RunResult]
    mean: dict[str, float]
    std: dict[str, float]
    oof: OutOfFold | None = None

    @property
    def folds_csv(self) -> Path:
        return self.out_dir / "folds.csv"


def kfold_dir(cfg: TrainConfig) -> Path:
    """``cfg.out``, else ``<runs_dir>/<model>-kfold<k>-<timestamp>``."""
    if cfg.out:
        return Path(cfg.out)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path(cfg.runs_dir) / f"{cfg.model}-kfold{cfg.folds}-{stamp}"


def fold_rows(runs: list[RunResult]) -> list[dict]:
    return [{"fold": k, "run": r.run_dir.name, "best_epoch": r.best_epoch,
             **{m: float(r.best[m]) for m in FOLD_METRICS}} for k, r in enumerate(runs)]


def summarise(rows: list[dict]) -> tuple[dict[str, float], dict[str, float]]:
    """(mean, std) of each metric over folds; the sample std (ddof=1), 0 for a single fold."""
    table = np.array([[row[m] for m in FOLD_METRICS] for row in rows], dtype=np.float64)
    mean = table.mean(0)
    std = table.std(0, ddof=1) if len(rows) > 1 else np.zeros(len(FOLD_METRICS))
    return dict(zip(FOLD_METRICS, mean.tolist())), dict(zip(FOLD_METRICS, std.tolist()))


def write_folds_csv(path: Path, rows: list[dict], mean: dict, std: dict,
                    oof: dict | None = None) -> None:
    """One row per fold, then ``mean`` and ``std`` rows, then the out-of-fold ``cv`` row."""
    extra = [{"fold": "mean", **mean}, {"fold": "std", **std}]
    extra += [{"fold": "cv", **oof}] if oof else []
    write_rows(path, FOLD_COLUMNS, rows + extra)


def print_folds(result: FoldsResult) -> None:
    table = Table(title=f"{len(result.runs)} folds in {result.out_dir}", show_edge=False)
    for column in ("fold", "best epoch", *FOLD_METRICS):
        table.add_column(column.replace("img_per_s", "img/s"), justify="right")
    for row in fold_rows(result.runs):
        table.add_row(str(row["fold"]), str(row["best_epoch"]),
                      *(f"{row[m]:.4f}" if m != "img_per_s" else f"{row[m]:.1f}"
                        for m in FOLD_METRICS))
    table.add_row("mean ± std", "", *(f"{result.mean[m]:.4f} ± {result.std[m]:.4f}"
                                      for m in FOLD_METRICS), style="bold")
    console.print(table)
    console.print(f"fold table: {result.folds_csv}")
    if result.oof is not None:
        m = result.oof.metrics
        console.print(f"[bold]out-of-fold CV over {len(result.oof.frame)} rows: acc "
                      f"{m['acc']:.4f}  f1 {m['f1_macro']:.4f}  kappa {m['kappa']:.4f}  "
                      f"sum {m['sum']:.4f}[/bold] -> {result.out_dir / 'oof.csv'}")


def fit_folds(cfg: TrainConfig, fit_fn: Callable[[TrainConfig], RunResult] = fit) -> FoldsResult:
    """Train fold 0..folds-1 of ``cfg.folds`` into ``<out>/fold<k>``; write ``<out>/folds.csv``.

    Args:
        cfg: the training config; ``cfg.folds`` >= 2, ``cfg.fold`` is set per fold.
        fit_fn: trains one fold (``trainer.fit``).
    Returns:
        the fold runs and the mean/std of their best rows.
    """
    if not cfg.folds or cfg.folds < 2:
        raise UsageError(f"k-fold training needs folds >= 2, got {cfg.folds}")
    out_dir = kfold_dir(cfg)
    runs: list[RunResult] = []
    for fold in range(cfg.folds):
        console.print(f"[bold]fold {fold + 1}/{cfg.folds}[/bold]")
        runs.append(fit_fn(replace(cfg, fold=fold, out=str(out_dir / f"fold{fold}"))))
        # rewritten after every fold, so an interrupted k-fold keeps the folds it finished
        rows = fold_rows(runs)
        mean, std = summarise(rows)
        write_folds_csv(out_dir / "folds.csv", rows, mean, std)
    if int(os.environ.get("RANK", "0")) != 0:      # under torchrun rank 0 writes the results
        return FoldsResult(out_dir, runs, mean, std)
    oof = predict_out_of_fold(cfg, [r.run_dir for r in runs])
    write_out_of_fold(out_dir, oof)
    write_folds_csv(out_dir / "folds.csv", rows, mean, std, oof.metrics)
    return FoldsResult(out_dir, runs, mean, std, oof)
