"""``fit(config)``: table -> loaders -> model -> epochs of train + evaluate -> records + checkpoints.

    from fastleaf.config import resolve_config
    from fastleaf.train.trainer import fit
    result = fit(resolve_config("configs/cnn.yaml", data="data/classify-leaves", epochs=2))
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import torch
import torch.nn as nn

from ..config import TrainConfig, save_config
from ..data.augment import AugmentSpec
from ..data.mix import create_mixer
from ..data.table import Table, load_table, save_classes
from ..loaders import LoaderOptions, create_loader, resolve_backend
from ..models import create_model, load_weights
from ..utils.console import console, make_progress
from ..utils.device import resolve_device, seed_everything
from .checkpoint import save_checkpoint
from .loop import evaluate, train_one_epoch
from .metrics import classification_metrics
from .optim import Schedule, create_optimizer
from .precision import Precision, create_precision
from .records import RunRecorder, append_score


@dataclass
class RunResult:
    run_dir: Path
    best_epoch: int
    best: dict
    last: dict
    loader: str


def default_run_dir(cfg: TrainConfig) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    fold = f"-fold{cfg.fold}" if cfg.folds else ""
    return Path(cfg.runs_dir) / f"{cfg.model}{fold}-{stamp}"


def default_workers() -> int:
    return max(1, min(4, (os.cpu_count() or 2)))


def build_model(cfg: TrainConfig, num_classes: int, device: torch.device):
    """(model to save, model to run).  Wrapping order: device -> channels_last -> compile."""
    model = create_model(cfg.model, num_classes, pretrained=cfg.pretrained,
                         finetune_all=cfg.finetune_all)
    if cfg.weights:
        report = load_weights(model, cfg.weights)
        console.print(f"weights {cfg.weights}: {report.summary()}")
    model.to(device)
    if cfg.channels_last:
        # NHWC lets oneDNN / cuDNN pick their fast convolution kernels
        model.to(memory_format=torch.channels_last)
    runnable = model
    if cfg.compile:
        # compile last, on the final layout; the uncompiled module keeps clean state-dict keys
        runnable = torch.compile(model)
    return model, runnable


def build_loaders(cfg: TrainConfig, table: Table, device: torch.device):
    backend, why = resolve_backend(cfg.loader, device)
    options = LoaderOptions(batch_size=cfg.batch_size, device=device,
                            channels_last=cfg.channels_last,
                            workers=default_workers() if cfg.workers is None else cfg.workers,
                            seed=cfg.seed)
    train_spec = AugmentSpec.train_preset(cfg.img_size, cfg.augment)
    eval_spec = AugmentSpec.eval_preset(cfg.img_size)
    train = create_loader(table.train, train_spec, options, backend)
    val = create_loader(table.val, eval_spec, options, backend)
    return train, val, backend, why


def checkpoint_state(cfg, model, classes, epoch, metrics, best_score, extra=None) -> dict:
    state = {"model_name": cfg.model, "model": model.state_dict(), "classes": list(classes),
             "config": cfg.to_dict(), "epoch": epoch, "metrics": dict(metrics),
             "best_score": best_score}
    state.update(extra or {})
    return state


def training_state(optimizer, schedule: Schedule, precision: Precision) -> dict:
    return {"optimizer": optimizer.state_dict(), "scheduler": schedule.state_dict(),
            "scaler": precision.scaler.state_dict() if precision.scaler else {},
            "rng": {"torch": torch.get_rng_state()}}


def epoch_line(row: dict, epochs: int, best: bool) -> str:
    mark = " [green]*best[/green]" if best else ""
    return (f"epoch {row['epoch']:>3}/{epochs}  train_loss {row['train_loss']:.4f}  "
            f"val_loss {row['val_loss']:.4f}  acc {row['acc']:.4f}  f1 {row['f1_macro']:.4f}  "
            f"kappa {row['kappa']:.4f}  sum {row['sum']:.4f}  {row['img_per_s']:.1f} img/s  "
            f"lr {row['lr']:.2e}{mark}")


def fit(cfg: TrainConfig) -> RunResult:
    """Train one model as ``cfg`` says; returns the run folder and its best/last metrics."""
    device = resolve_device(cfg.device)
    seed_everything(cfg.seed)
    table = load_table(cfg.data, val_fraction=cfg.val_fraction, seed=cfg.seed, fold=cfg.fold,
                       folds=cfg.folds)
    if len(table.val) == 0:
        raise ValueError("the validation split is empty: raise --val-fraction or add data")
    run_dir = Path(cfg.out) if cfg.out else default_run_dir(cfg)
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(cfg, run_dir / "config.yaml")
    save_classes(table.classes, run_dir / "classes.json")

    train_loader, val_loader, backend, why = build_loaders(cfg, table, device)
    model, runnable = build_model(cfg, table.num_classes, device)
    optimizer = create_optimizer(model, cfg.optimizer, cfg.lr, cfg.weight_decay)
    schedule = Schedule(optimizer, cfg.scheduler, cfg.epochs, cfg.warmup_epochs,
                        cfg.plateau_factor, cfg.plateau_patience)
    precision = create_precision(cfg.amp, device, cfg.amp_dtype)
    train_loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    # CutMix / MixUp on the device batch; their soft targets carry the label smoothing
    mixer = create_mixer(cfg.cutmix, cfg.mixup, cfg.mix_prob, table.num_classes,
                         cfg.label_smoothing, seed=cfg.seed)
    eval_loss_fn = nn.CrossEntropyLoss()
    console.print(f"[bold]fastleaf[/bold] {cfg.model} on {device} ({precision.name}"
                  f"{', channels_last' if cfg.channels_last else ''}"
                  f"{', compiled' if cfg.compile else ''}); loader {backend} ({why}); "
                  f"{len(table.train)} train / {len(table.val)} val images, "
                  f"{table.num_classes} classes -> {run_dir}")

    recorder = RunRecorder(run_dir, tensorboard=cfg.tensorboard)
    best_score, best_epoch, best, row = float("-inf"), 0, {}, {}
    try:
        for epoch in range(1, cfg.epochs + 1):
            train_loader.set_epoch(epoch)
            start = time.perf_counter()
            with make_progress(cfg.progress) as progress:
                task = progress.add_task(f"epoch {epoch}/{cfg.epochs}", total=len(train_loader),
                                         rate=0.0, loss=0.0)
                t0 = time.perf_counter()

                def on_step(step, seen, loss):
                    progress.update(task, completed=step, loss=loss,
                                    rate=seen / max(time.perf_counter() - t0, 1e-9))

                stats = train_one_epoch(runnable, train_loader, optimizer, precision,
                                        train_loss_fn, mixer=mixer, grad_clip=cfg.grad_clip,
                                        on_step=on_step)
            val_loss, preds, labels, val_rate = evaluate(runnable, val_loader, precision,
                                                         eval_loss_fn)
            metrics = classification_metrics(labels, preds)
            lr = schedule.lr
            schedule.step(epoch, val_loss)
            row = {"epoch": epoch, "train_loss": stats.loss, "val_loss": val_loss, **metrics,
                   "img_per_s": stats.img_per_s, "val_img_per_s": val_rate, "lr": lr,
                   "time_s": time.perf_counter() - start}
            recorder.log_epoch(row)
            is_best = metrics["sum"] > best_score
            if is_best:
                best_score, best_epoch, best = metrics["sum"], epoch, row
                save_checkpoint(run_dir / "best.pt", checkpoint_state(
                    cfg, model, table.classes, epoch, row, best_score))
            save_checkpoint(run_dir / "last.pt", checkpoint_state(
                cfg, model, table.classes, epoch, row, best_score,
                training_state(optimizer, schedule, precision)))
            console.print(epoch_line(row, cfg.epochs, is_best))
    finally:
        recorder.close()
    append_score(run_dir.parent / "scores.csv", score_row(cfg, run_dir, best_epoch, best))
    return RunResult(run_dir, best_epoch, best, row, backend)


def score_row(cfg: TrainConfig, run_dir: Path, best_epoch: int, best: dict) -> dict:
    return {"run": run_dir.name, "model": cfg.model, "epochs": cfg.epochs,
            "batch_size": cfg.batch_size, "lr": cfg.lr, "amp": cfg.amp,
            "channels_last": cfg.channels_last, "best_epoch": best_epoch,
            **{k: best.get(k, "") for k in ("acc", "f1_macro", "kappa", "sum", "img_per_s")},
            "finished": datetime.now().isoformat(timespec="seconds")}
