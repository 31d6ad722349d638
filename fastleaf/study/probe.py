"""Time a few steps of a model exactly as its run will take them: the run's config, its real
loader, its precision and layout, the trainer's own step (``train_one_epoch``) and evaluation
(``predict_logits``).  One warm-up step first: allocator and kernel choice are not the run's
steady state.
"""
from __future__ import annotations

import time

import torch.nn as nn

from ..bench.timing import Steps, batch_stream
from ..config import TrainConfig
from ..data.table import load_table
from ..models.data_config import resolve_data_config
from ..train.loop import predict_logits, train_one_epoch
from ..train.optim import create_optimizer
from ..train.precision import create_precision
from ..train.build import build_loaders, build_model, check_input_size, with_speed_defaults
from ..utils.device import configure_device, resolve_device, seed_everything, synchronize
from .budget import Timing


def timed(run, steps: int, device) -> float:
    """Seconds per step of ``run(steps)``."""
    synchronize(device)
    start = time.perf_counter()
    run(steps)
    synchronize(device)
    return (time.perf_counter() - start) / steps


def probe_model(cfg: TrainConfig, steps: int = 3, warmup: int = 1,
                check_s: float = 0.0) -> Timing:
    """Measure ``cfg``'s setup, training step and validation batch on this machine."""
    device = resolve_device(cfg.device)
    configure_device(device)
    seed_everything(cfg.seed)
    cfg = with_speed_defaults(resolve_data_config(cfg), device)
    start = time.perf_counter()
    table = load_table(cfg.data, val_fraction=cfg.val_fraction, seed=cfg.seed)
    precision = create_precision(cfg.amp, device, cfg.amp_dtype)
    train_loader, val_loader, _, _ = build_loaders(cfg, table, device, precision)
    model, runnable = build_model(cfg, table.num_classes, device)
    check_input_size(model, cfg, device)       # a size the model refuses, said in one line
    optimizer = create_optimizer(model, cfg.optimizer, cfg.lr, cfg.weight_decay,
                                 cfg.backbone_lr, cfg.layer_decay)
    setup_s = time.perf_counter() - start
    loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    train = batch_stream(train_loader)

    def train_steps(n):
        train_one_epoch(runnable, Steps(train, n), optimizer, precision, loss_fn)

    train_steps(warmup)
    step_s = timed(train_steps, steps, device)
    batch_s = 0.0
    if val_loader is not None:
        val = batch_stream(val_loader)

        def eval_batches(n):
            predict_logits(runnable, Steps(val, n), precision)

        eval_batches(warmup)
        batch_s = timed(eval_batches, steps, device)
    return Timing(cfg.model, setup_s, step_s, batch_s, check_s)


def probe_check(data: str) -> tuple[float, int]:
    """(seconds, images) of the data check every run starts with."""
    from ..data.check import check_data

    report = check_data(data)
    return report.seconds, max(report.images_checked, 1)
