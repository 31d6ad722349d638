"""What a run folder holds at its start and in each checkpoint.

A fresh start writes ``config.yaml``, ``classes.json``, ``bad_rows.csv``, the records and a
``last.pt`` of the state before epoch 1; one that fails half-way (a full disk) removes them
again, so the same ``--out`` starts over and no folder has a config without a ``last.pt``.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from ..config import save_config
from ..data.preflight import Preflight
from ..data.table import data_fingerprint, save_classes
from ..utils.paths import RUN_FILES
from .checkpoint import save_checkpoint
from .ema import EMA_COLUMNS
from .records import EPOCH_COLUMNS, RunRecorder
from .resume import training_state
from .tracking import create_tracker


def checkpoint_state(cfg, model, classes, epoch, metrics, best_score, extra=None, *,
                     ema: bool = False) -> dict:
    """``model``: the weights saved; ``ema``: whether they are the weight average."""
    state = {"model_name": cfg.model, "model": model.state_dict(), "classes": list(classes),
             "config": cfg.to_dict(), "epoch": epoch, "metrics": dict(metrics),
             "best_score": best_score, "ema": ema,
             "data_fingerprint": data_fingerprint(cfg.data)}
    state.update(extra or {})
    return state


def start_folder(run, checked: Preflight, resume: dict | None) -> None:
    """Write the start of ``run`` (a ``trainer.Run``); ``resume``: its last.pt state."""
    cfg, run_dir = run.cfg, run.run_dir
    if cfg.overwrite and not resume:
        clear_run(run_dir)
    try:
        write_start(run, checked, resume)
    except BaseException:
        if not resume:     # a resumed run keeps its last.pt: it stays resumable as it was
            if run.recorder is not None:
                run.recorder.close("FAILED")
                run.recorder = None
            clear_run(run_dir)
        raise


def write_start(run, checked: Preflight, resume: dict | None) -> None:
    cfg, run_dir = run.cfg, run.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(cfg, run_dir / "config.yaml")
    save_classes(run.table.classes, run_dir / "classes.json")
    checked.write(run_dir)
    run.recorder = RunRecorder(run_dir, tensorboard=cfg.tensorboard,
                               columns=EPOCH_COLUMNS + (EMA_COLUMNS if cfg.model_ema else ()),
                               purge_step=resume["epoch"] + 1 if resume else None,
                               tracker=create_tracker(cfg, run_dir))
    if resume:
        run.recorder.truncate(int(resume["epoch"]))   # rows after the checkpoint are redone
    else:
        # the state before epoch 1: a stop during the first epoch resumes from here
        save_checkpoint(run_dir / "last.pt", checkpoint_state(
            cfg, run.model, run.table.classes, 0, {}, run.best_score, training_state(run)))


def clear_run(run_dir: Path) -> None:
    """``--overwrite``: the old run's records go, so nothing of it mixes into the new one."""
    for name in (*RUN_FILES, "bad_rows.csv", "relabel.csv", "classes.json", "mlflow_run_id"):
        (run_dir / name).unlink(missing_ok=True)
    shutil.rmtree(run_dir / "tb", ignore_errors=True)
