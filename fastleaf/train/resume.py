"""Continue a run from ``last.pt``: model, optimizer, scheduler, grad scaler, epoch, best, RNG."""
from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch

from ..config import KEYS, TrainConfig, check_value, load_yaml
from .checkpoint import CheckpointError, load_checkpoint


# options that decide the model's shape or the split: changing them cannot continue a run
FIXED_ON_RESUME = ("model", "finetune_all", "folds", "fold", "val_fraction", "seed")


def resume_config(run_dir: str | Path, **overrides) -> TrainConfig:
    """The run's saved config, with any explicitly given option on top (e.g. more epochs)."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file() or not (run_dir / "last.pt").is_file():
        raise CheckpointError(f"{run_dir}: nothing to resume (needs config.yaml and last.pt)")
    values = load_yaml(run_dir / "config.yaml")
    # what the run used: an option its config.yaml does not record was at its default
    saved = TrainConfig.from_dict(values, str(run_dir / "config.yaml")).to_dict()
    given = {k: v for k, v in overrides.items() if v is not None and k in KEYS}
    out = given.pop("out", None)
    if out is not None and os.path.realpath(out) != os.path.realpath(run_dir):
        raise CheckpointError(f"--out {out}: a resumed run stays in its own folder {run_dir}; "
                              f"drop --out (copy the folder first to continue it elsewhere)")
    for key, value in given.items():
        check_value(key, value, f"--{key.replace('_', '-')}")
    fixed = {k: (saved[k], v) for k, v in given.items()
             if k in FIXED_ON_RESUME and v != saved[k]}
    if fixed:
        said = ", ".join(f"--{k.replace('_', '-')} {new!r} (the run has {old!r})"
                         for k, (old, new) in sorted(fixed.items()))
        raise CheckpointError(f"{run_dir}: cannot resume with {said}; a resumed run keeps its "
                              f"model and split (start a new run with --out for that)")
    return TrainConfig.from_dict({**saved, **given, "out": str(run_dir), "resume": str(run_dir)},
                                 str(run_dir / "config.yaml"))


def rng_state(device: torch.device | None = None) -> dict:
    """Every generator a run draws from; on CUDA, the training device's only.

    One state per visible GPU would tie the checkpoint to the machine it was saved on: a
    resume where fewer GPUs are visible could not restore them.
    """
    # numpy's state as tensors and primitives, so weights-only loading can read it back
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {"torch": torch.get_rng_state(),
             "numpy": [name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss),
                       float(gauss)],
             "python": random.getstate()}
    if device is not None and device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def restore_rng(state: dict, device: torch.device | None = None) -> None:
    """Put back what :func:`rng_state` saved; the CUDA state goes to ``device``."""
    if "torch" in state:
        torch.set_rng_state(state["torch"])
    if "numpy" in state:
        name, keys, pos, has_gauss, gauss = state["numpy"]
        np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    if "python" in state:
        version, internal, gauss = state["python"]
        random.setstate((version, tuple(internal), gauss))
    cuda = state.get("cuda")
    if cuda is None or device is None or device.type != "cuda":
        return
    if isinstance(cuda, (list, tuple)):
        # older checkpoints hold one state per GPU visible when saved: take this device's
        index = torch.cuda.current_device() if device.index is None else device.index
        if index >= len(cuda):
            return
        cuda = cuda[index]
    torch.cuda.set_rng_state(cuda, device)


def load_resume_state(run_dir: str | Path, classes: list[str], epochs: int) -> dict:
    """``last.pt`` checked against the data's classes and the epochs asked for."""
    state = load_checkpoint(Path(run_dir) / "last.pt")
    if list(state["classes"]) != list(classes):
        raise CheckpointError(f"{run_dir}/last.pt: its class list differs from the data's; "
                              f"resume on the data the run was trained on")
    for key in ("optimizer", "scheduler", "epoch"):
        if key not in state:
            raise CheckpointError(f"{run_dir}/last.pt: no {key!r} entry, cannot resume")
    if int(state["epoch"]) > epochs:
        # the config would say `epochs` while the weights have trained longer
        raise CheckpointError(f"--epochs {epochs}: {run_dir} has already trained "
                              f"{int(state['epoch'])} epochs; resume with more epochs, or start "
                              f"a new run with --out for a shorter one")
    return state


def training_state(run) -> dict:
    """What ``last.pt`` adds to a checkpoint so that ``--resume`` continues exactly."""
    scaler = run.precision.scaler
    ema = {"ema_model": run.ema.module.state_dict()} if run.ema is not None else {}
    return {**ema, "optimizer": run.optimizer.state_dict(), "scheduler": run.schedule.state_dict(),
            "scaler": scaler.state_dict() if scaler else {}, "rng": rng_state(run.device),
            "best_epoch": run.best_epoch, "best_row": dict(run.best_row)}


def restore(run, state: dict) -> None:
    """Put ``last.pt``'s state into a freshly built trainer ``Run``."""
    try:
        run.model.load_state_dict(state["model"])
        if run.ema is not None:   # a run that had no EMA yet starts one from its weights
            # (a last.pt written before best.pt could hold either kept the average in "ema")
            averaged = state.get("ema_model", state.get("ema"))
            run.ema.module.load_state_dict(averaged if isinstance(averaged, dict)
                                           else state["model"])
        run.optimizer.load_state_dict(state["optimizer"])
    except (RuntimeError, ValueError, KeyError) as err:
        first = str(err).strip().splitlines()[0][:200]
        raise CheckpointError(f"{run.run_dir / 'last.pt'}: does not fit the model built from "
                              f"these options ({first}); resume without changing them") from None
    run.schedule.load_state_dict(state["scheduler"])
    if run.precision.scaler is not None and state.get("scaler"):
        run.precision.scaler.load_state_dict(state["scaler"])
    restore_rng(state.get("rng", {}), run.device)
    run.start_epoch = int(state["epoch"]) + 1
    run.best_score = float(state.get("best_score", float("-inf")))
    run.best_epoch = int(state.get("best_epoch", 0))
    run.best_row = dict(state.get("best_row", {}))
