"""The learning-rate range test on a run's own data, model and settings (``fastleaf lr-find``).

    fastleaf lr-find --data DIR --model resnet18 --out runs/lr-resnet18
    fastleaf lr-find --data DIR --config finetune --model tf_efficientnet_lite0 --pretrained

Builds what ``fastleaf train`` would build for the configuration (split, training views,
model, optimizer, precision), sweeps the learning rate (:mod:`fastleaf.train.lr_find`) and
writes the curve with its suggestion; nothing of the model is kept.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..config import TrainConfig
from ..data.table import load_table
from ..models.data_config import resolve_data_config
from ..train.lr_find import SweepResult, plot, sweep
from ..train.optim import create_optimizer
from ..train.precision import create_precision
from ..utils.console import console
from ..utils.device import configure_device, resolve_device, seed_everything
from .build import build_loaders, build_model, training_loss, with_speed_defaults


@dataclass
class LrSearch:
    result: SweepResult
    plot: Path | None
    config: TrainConfig


def lr_range_test(cfg: TrainConfig, out: str | Path | None = None, *, steps: int = 100,
                  start: float = 1e-7, end: float = 10.0) -> LrSearch:
    """Sweep the lr for ``cfg`` (its data, model, optimizer, batch, augmentation); write the
    curve as ``lr_find.png`` under ``out`` when given."""
    device = resolve_device(cfg.device)
    configure_device(device)
    cfg = with_speed_defaults(resolve_data_config(cfg), device)
    seed_everything(cfg.seed)
    table = load_table(cfg.data, val_fraction=cfg.val_fraction, seed=cfg.seed, fold=cfg.fold,
                       folds=cfg.folds, group_near_duplicates=cfg.group_near_duplicates)
    precision = create_precision(cfg.amp, device, cfg.amp_dtype)
    # the training rows only: no validation loader is built (a cache would decode it for nothing)
    no_val = replace(table, val=table.val.subset(np.zeros(0, dtype=np.int64)))
    train_loader, _, _, _ = build_loaders(cfg, no_val, device, precision)
    model, runnable = build_model(cfg, table.num_classes, device)
    optimizer = create_optimizer(model, cfg.optimizer, cfg.lr, cfg.weight_decay,
                                 cfg.backbone_lr, cfg.layer_decay)
    loss_fn = training_loss(cfg, table, device)      # the run's own (class weights too)
    console.print(f"lr range test: {cfg.model}, {steps} steps from {start:g} to {end:g} "
                  f"(batch {cfg.batch_size}, {cfg.optimizer})")
    result = sweep(runnable, train_loader, optimizer, precision, loss_fn, start=start, end=end,
                   steps=steps)
    path = None
    if out is not None:
        Path(out).mkdir(parents=True, exist_ok=True)
        path = Path(out) / "lr_find.png"
        plot(result, path, title=f"{cfg.model}: learning-rate range test")
    return LrSearch(result, path, cfg)
