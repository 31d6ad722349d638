"""``fit(config)``: table -> loaders -> model -> epochs of train + evaluate -> records + checkpoints.

    from fastleaf.config import resolve_config
    from fastleaf.train.trainer import fit
    result = fit(resolve_config("cnn", data="data/classify-leaves", epochs=2))
"""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

import torch
import torch.nn as nn

from ..config import TrainConfig
from ..data.mix import create_mixer
from ..data.preflight import Preflight, apply_audit, preflight
from ..data.table import Table, load_table, resolve_layout
from ..errors import UsageError
from ..loaders import training_batch
from ..models.data_config import resolve_data_config
from ..models.pretrained import resolve_pretrained
from ..utils.console import console, make_progress
from ..utils.device import configure_device, resolve_device, seed_everything
from ..utils.paths import run_folder
from ..vocab import METRICS
from .build import (build_loaders, build_model, check_input_size, training_loss,
                    with_speed_defaults)
from .checkpoint import CheckpointWriter
from .ema import compared_fields, compared_text, create_ema, prefer_ema, resolve_decay
from .freeze import BackboneFreeze
from .distributed import (AgreedStop, DistInfo, all_reduce_sum, broadcast_flag,
                          check_sync_bn, cleanup_distributed, gather_in_rank_order,
                          init_distributed, sync_buffers, wrap_ddp)
from .lock import hold_run_folder
from .loop import SYNC_EVERY, EpochStats, check_finite, predict_logits, train_one_epoch
from .metrics import classification_metrics
from .optim import Schedule, create_optimizer
from .precision import Precision, amp_is_fast, create_precision
from .records import RunRecorder, append_score, row_score
from .resume import load_resume_state, restore
from .run_files import checkpoint_state, start_folder, training_state
from .signals import GracefulStop, TrainingInterrupted
from .topk import check_metric, update_top
from .early_stop import stop_reason


@dataclass
class RunResult:
    run_dir: Path
    best_epoch: int
    best: dict
    last: dict
    loader: str


def default_run_dir(cfg: TrainConfig) -> Path:
    """``runs/<model>-<timestamp>``; under torchrun the launch's run id replaces the time, so
    every rank and every elastic restart names the same folder."""
    run_id = os.environ.get("TORCHELASTIC_RUN_ID", "none")
    stamp = run_id if run_id != "none" else datetime.now().strftime("%Y%m%d-%H%M%S")
    fold = f"-fold{cfg.fold}" if cfg.folds else ""
    return Path(cfg.runs_dir) / f"{cfg.model}{fold}-{stamp}"


def epoch_line(row: dict, epochs: int, best: bool, metric: str) -> str:
    mark = " [green]*best[/green]" if best else ""
    return (f"epoch {row['epoch']:>3}/{epochs}  train_loss {row['train_loss']:.4f}  "
            f"val_loss {row['val_loss']:.4f}  acc {row['acc']:.4f}  f1 {row['f1_macro']:.4f}  "
            f"kappa {row['kappa']:.4f}  sum {row['sum']:.4f}  {row['img_per_s']:.1f} img/s  "
            f"lr {row['lr']:.2e}{compared_text(row, metric)}{mark}")


@dataclass
class Run:
    """Everything one training run holds between epochs."""

    cfg: TrainConfig
    info: DistInfo
    device: torch.device
    table: Table
    run_dir: Path
    model: nn.Module            # the raw module: saved, and used for evaluation
    train_model: nn.Module      # compiled and/or DDP-wrapped view of the same weights
    eval_model: nn.Module
    train_loader: object
    val_loader: object
    optimizer: torch.optim.Optimizer
    schedule: Schedule
    precision: Precision
    mixer: object
    recorder: RunRecorder | None
    ema: object = None          # timm ModelEmaV3: validated with the raw weights each epoch
    freezer: BackboneFreeze | None = None
    start_epoch: int = 1
    best_score: float = float("-inf")
    best_epoch: int = 0
    best_row: dict = field(default_factory=dict)
    writer: CheckpointWriter = field(default_factory=CheckpointWriter)


def setup(cfg: TrainConfig, info: DistInfo, device: torch.device,
          run_dir: Path) -> tuple[Run, str, str]:
    check_sync_bn(cfg.sync_bn, info, device)
    seed_everything(cfg.seed)
    check_metric(cfg.eval_metric)
    if info.main:      # under the lock: a run that finished while this one waited is seen
        check_run_folder(cfg, run_dir)
    checked = Preflight()
    if cfg.check_data:
        # every bad file is found here, before the first step, never deep inside an epoch
        checked = preflight(cfg.data, skip_bad=cfg.skip_bad, quiet=not info.main)
    apply_audit(checked, resolve_layout(cfg.data).train_csv, exclude=cfg.exclude,
                relabel=cfg.relabel)
    table = load_table(cfg.data, val_fraction=cfg.val_fraction, seed=cfg.seed, fold=cfg.fold,
                       folds=cfg.folds, drop_rows=checked.drop, relabel=checked.relabel,
                       group_near_duplicates=cfg.group_near_duplicates)
    if cfg.early_stop and len(table.val) == 0:
        raise UsageError("--early-stop watches the validation metric: a final fit "
                         "(--val-fraction 0) has none")
    if len(table.val) == 0 and (cfg.folds or cfg.val_fraction > 0):
        raise UsageError("the validation split is empty: raise --val-fraction or add data")
    batch, note = training_batch(cfg.batch_size, -(-len(table.train) // info.world),
                                 cfg.img_size, device)
    if note and info.main:
        console.print(f"[yellow]note: {note}[/yellow]")
    cfg = replace(cfg, batch_size=batch)       # the batch that runs is the one recorded
    resume = load_resume_state(run_dir, table.classes, cfg.epochs) if cfg.resume else None
    precision = create_precision(cfg.amp, device, cfg.amp_dtype)
    train_loader, val_loader, backend, why = build_loaders(cfg, table, device, precision,
                                                           info.shard)
    model, compiled = build_model(cfg, table.num_classes, device)
    check_input_size(model, cfg, device)
    optimizer = create_optimizer(model, cfg.optimizer, cfg.lr, cfg.weight_decay,
                                 cfg.backbone_lr, cfg.layer_decay)
    schedule = Schedule(optimizer, cfg.scheduler, cfg.epochs, cfg.warmup_epochs,
                        cfg.plateau_factor, cfg.plateau_patience, min_lr=cfg.min_lr,
                        # optimizer steps, not batches: --grad-accum steps once per N batches
                        steps_per_epoch=-(-len(train_loader) // cfg.grad_accum))
    ema = None
    if cfg.model_ema:
        steps = cfg.epochs * -(-len(train_loader) // cfg.grad_accum)
        decay, decay_why = resolve_decay(cfg.model_ema_decay, steps)
        cfg = replace(cfg, model_ema_decay=decay)       # config.yaml records what ran
        if info.main:
            console.print(f"weight EMA: decay {decay:.4f} ({decay_why})")
        # the EMA copies the model before any freezing hook is attached
        ema = create_ema(model, decay)
    # CutMix / MixUp on the device batch; their soft targets carry the label smoothing
    mixer = create_mixer(cfg.cutmix, cfg.mixup, cfg.mix_prob, table.num_classes,
                         cfg.label_smoothing, seed=cfg.seed + info.rank)
    # DDP wraps last (after compile); evaluation uses the unwrapped view: no collective calls
    train_model = wrap_ddp(compiled, info, device, cfg.sync_bn, find_unused=cfg.freeze_epochs > 0)
    # after --sync-bn swapped the norm layers: the freezer keeps the ones the model now has
    freezer = BackboneFreeze(model, cfg.freeze_epochs) if cfg.freeze_epochs > 0 else None
    run = Run(cfg, info, device, table, run_dir, model, train_model, compiled, train_loader,
              val_loader, optimizer, schedule, precision, mixer, None, ema, freezer)
    if resume:
        restore(run, resume)       # a checkpoint that does not fit fails here, before any write
    if info.main:      # only now: a run that cannot start leaves its folder as it was
        start_folder(run, checked, resume)
    return run, backend, why


def train_epoch(run: Run, epoch: int, stop) -> tuple[EpochStats, bool]:
    """(the epoch's figures for the whole group, whether every rank stops on a signal)."""
    cfg = run.cfg
    run.train_loader.set_epoch(epoch)
    if run.freezer is not None:
        run.freezer.set_epoch(epoch)
    should_stop = AgreedStop(stop, run.info, run.device, every=SYNC_EVERY)
    with make_progress(cfg.progress and run.info.main) as progress:
        task = progress.add_task(f"epoch {epoch}/{cfg.epochs}", total=len(run.train_loader),
                                 rate=0.0, loss=0.0)
        t0 = time.perf_counter()

        def on_step(step, seen, loss):
            progress.update(task, completed=step, loss=loss,
                            rate=seen * run.info.world / max(time.perf_counter() - t0, 1e-9))

        stats = train_one_epoch(run.train_model, run.train_loader, run.optimizer, run.precision,
                                training_loss(cfg, run.table, run.device),
                                mixer=run.mixer, grad_clip=cfg.grad_clip, accum=cfg.grad_accum,
                                on_step=on_step,
                                should_stop=should_stop, after_step=lambda: after_step(run))
    # every rank's loss sum, image count and time -> one figure for the whole group
    loss_sum, images, seconds = all_reduce_sum(
        [stats.loss * stats.images, float(stats.images), stats.seconds], run.info, run.device)
    # the agreed flag, not the local one: a rank without the signal must not go on alone
    # into validation's collectives
    stopped = should_stop.settle()
    return EpochStats(loss_sum / max(images, 1), int(images), seconds / run.info.world), stopped


NO_VALIDATION = dict.fromkeys(METRICS, float("nan"))


def after_step(run: Run) -> None:
    run.schedule.step_update()
    if run.ema is not None:
        run.ema.update(run.model, step=run.schedule.updates)


def validate(run: Run) -> tuple[float, dict, float]:
    """(val loss, metrics, img/s) over the whole validation split, gathered across ranks.

    With an EMA both the raw weights and the average are scored; the figures are those of
    the better one by the eval metric, and the metrics add both sets and the pick."""
    if run.val_loader is None:
        return float("nan"), dict(NO_VALIDATION), 0.0
    sync_buffers(run.model, run.info)      # evaluate rank 0's weights on every shard
    loss, metrics, rate = evaluate(run, run.eval_model)
    if run.ema is None:
        return loss, metrics, rate
    raw = {"val_loss": loss, **metrics}
    sync_buffers(run.ema.module, run.info)  # the copied norm statistics of rank 0's last step
    ema_loss, ema_metrics, _ = evaluate(run, run.ema.module)
    averaged = {"val_loss": ema_loss, **ema_metrics}
    use_ema = prefer_ema(raw, averaged, run.cfg.eval_metric)
    chosen = dict(averaged if use_ema else raw)
    return chosen.pop("val_loss"), {**chosen, **compared_fields(raw, averaged, use_ema)}, rate


def evaluate(run: Run, model: nn.Module) -> tuple[float, dict, float]:
    logits, labels, rate = predict_logits(model, run.val_loader, run.precision)
    logits = gather_in_rank_order(logits, run.info)
    labels = gather_in_rank_order(labels, run.info)
    loss = float(nn.functional.cross_entropy(logits, labels))
    metrics = classification_metrics(labels.numpy(), logits.argmax(-1).numpy())
    return loss, metrics, rate * run.info.world


def save_epoch(run: Run, epoch: int, row: dict) -> bool:
    """Record the epoch and write checkpoints (rank 0); returns whether it is the best."""
    score = row_score(row, run.cfg.eval_metric)
    is_best = score > run.best_score
    if is_best:
        run.best_score, run.best_epoch, run.best_row = score, epoch, row
    if not run.info.main:
        return is_best
    cfg, classes = run.cfg, run.table.classes
    run.recorder.log_epoch(row)
    # the weights the row's figures belong to (a final fit has no score: the average)
    use_ema = run.ema is not None and bool(row.get("ema", True))
    evaluated = run.ema.module if use_ema else run.model
    if cfg.keep_top:
        update_top(run.run_dir, cfg.keep_top, epoch, score,
                   "epoch" if run.val_loader is None else cfg.eval_metric,
                   checkpoint_state(cfg, evaluated, classes, epoch, row, score, ema=use_ema))
    # best.pt then last.pt, written while the next epoch trains (VGG16 + Adam: ~1.6 GB)
    best = [(run.run_dir / "best.pt", checkpoint_state(
        cfg, evaluated, classes, epoch, row, run.best_score, ema=use_ema))] if is_best else []
    run.writer.save(best + [(run.run_dir / "last.pt", checkpoint_state(
        cfg, run.model, classes, epoch, row, run.best_score, training_state(run)))])
    return is_best


def fit(cfg: TrainConfig) -> RunResult:
    """Train one model as ``cfg`` says; returns the run folder and its best/last metrics.

    Under torchrun every rank calls this; rank 0 writes the run folder.
    """
    info, device_name = init_distributed(cfg.device)
    try:
        device = resolve_device(device_name)
        configure_device(device)
        if cfg.pretrained and not cfg.resume:
            # before the data check: a missing weights package stops the run at once
            resolve_pretrained(cfg.model)
        cfg = resolve_data_config(cfg)
        if cfg.lr == "auto":
            cfg = auto_lr(cfg, info)
        if isinstance(cfg.data, (str, os.PathLike)):
            # recorded absolute: evaluate and report find the same data from any folder
            # (a CSV source holds absolute paths already)
            cfg = replace(cfg, data=os.path.abspath(cfg.data))
        return fit_on(with_speed_defaults(cfg, device), info, device)
    finally:
        cleanup_distributed()


def auto_lr(cfg: TrainConfig, info: DistInfo) -> TrainConfig:
    """``--lr auto``: the range test on this configuration picks the rate, which the run then
    records in its config.yaml as the rate it trained with."""
    if info.enabled:
        raise UsageError("--lr auto runs the range test in one process: run fastleaf lr-find "
                         "first and pass its rate with --lr")
    from .lr_search import lr_range_test      # it builds what this module builds

    # the optimizer needs a number to build; the sweep sets every group's rate itself
    search = lr_range_test(replace(cfg, lr=1.0))
    if search.result.suggestion is None:
        raise UsageError(f"--lr auto: the range test could not suggest a rate "
                         f"({search.result.stopped}); give --lr")
    console.print(f"--lr auto: {search.result.suggestion:.3g} from the range test "
                  f"({len(search.result.lrs)} steps, {search.result.stopped})")
    return replace(cfg, lr=search.result.suggestion)


def check_run_folder(cfg: TrainConfig, run_dir: Path) -> None:
    run_folder(run_dir, resume=bool(cfg.resume), overwrite=cfg.overwrite,
               data_root=resolve_layout(cfg.data).image_root)


def fit_on(cfg: TrainConfig, info: DistInfo, device: torch.device) -> RunResult:
    run_dir = Path(cfg.out) if cfg.out else default_run_dir(cfg)
    if info.main:      # the rank that writes; the others would see its files appear
        check_run_folder(cfg, run_dir)     # before the lock creates the folder
    with hold_run_folder(run_dir, enabled=info.main):
        return train_run(cfg, info, device, run_dir)


def train_run(cfg: TrainConfig, info: DistInfo, device: torch.device,
              run_dir: Path) -> RunResult:
    run, backend, why = setup(cfg, info, device, run_dir)
    if info.main:
        console.print(f"[bold]fastleaf[/bold] {cfg.model} on {device}"
                      f"{f' x{info.world} processes' if info.enabled else ''} "
                      f"({run.precision.name}{', channels_last' if cfg.channels_last else ''}"
                      f"{', compiled' if cfg.compile else ''}); loader {backend} ({why}); "
                      f"{len(run.table.train)} train / {len(run.table.val)} val images, "
                      f"{run.table.num_classes} classes -> {run.run_dir}"
                      f"{f' (resumed at epoch {run.start_epoch})' if cfg.resume else ''}")
    if info.main and run.val_loader is None:
        console.print("[yellow]final fit (--val-fraction 0): every row trains, no validation "
                      "runs; best.pt is the last finished epoch[/yellow]")
    if info.main and cfg.amp and not amp_is_fast(device):
        console.print("[yellow]note: this CPU has no native bf16 kernels (AVX512-BF16/AMX), so "
                      "bf16 autocast is emulated and slower than fp32 here; drop --amp[/yellow]")
    row = {}
    try:
        with GracefulStop() as stop:
            # a resumed run that had already met its early stop trains no further
            first = cfg.epochs + 1 if cfg.early_stop and stop_early(run) else run.start_epoch
            for epoch in range(first, cfg.epochs + 1):
                start = time.perf_counter()
                stats, stopped = train_epoch(run, epoch, stop)
                if stopped:
                    # last.pt already holds the state at the end of epoch - 1 (or before
                    # epoch 1); the weights half-way through this epoch are not a resumable state
                    cause = f"signal {stop.signum}" if stop() else "a signal to another rank"
                    raise TrainingInterrupted(
                        f"stopped by {cause} during epoch {epoch}; "
                        f"{run.run_dir / 'last.pt'} holds the end of epoch {epoch - 1} (epoch "
                        f"{epoch} will be redone). Resume with: fastleaf train --resume "
                        f"{run.run_dir}", stop.exit_code)
                check_finite(run.model, stats.loss, epoch, f"{run.run_dir / 'last.pt'} holds "
                             f"epoch {epoch - 1}; lower --lr (now {cfg.lr:g}) or set --grad-clip")
                val_loss, metrics, val_rate = validate(run)
                lr = run.schedule.lr
                # with no validation, the plateau schedule watches the training loss
                run.schedule.step(epoch, stats.loss if run.val_loader is None else val_loss)
                row = {"epoch": epoch, "train_loss": stats.loss, "val_loss": val_loss, **metrics,
                       "img_per_s": stats.img_per_s, "val_img_per_s": val_rate, "lr": lr,
                       "time_s": time.perf_counter() - start}
                is_best = save_epoch(run, epoch, row)
                if info.main:
                    console.print(epoch_line(row, cfg.epochs, is_best, cfg.eval_metric))
                if cfg.early_stop and stop_early(run):
                    break
    finally:
        # before the score row: a run is finished only once its checkpoints are on disk
        finish_writes(run, end_status(sys.exc_info()[1]))
    if info.main:
        # resolved: `--out .` names the current folder, whose parent keeps the scores
        append_score(run.run_dir.resolve().parent / "scores.csv",
                     score_row(cfg, run.run_dir, run.best_epoch, run.best_row))
    return RunResult(run.run_dir, run.best_epoch, run.best_row, row, run.train_loader.backend)


def stop_early(run: Run) -> bool:
    """Whether the run's eval metric has stalled for ``--early-stop`` epochs; every rank
    agrees (rank 0 holds the epoch rows, resumed ones included)."""
    reason = None
    if run.info.main:
        reason = stop_reason(run.recorder.rows, run.cfg.eval_metric, run.cfg.early_stop,
                             run.cfg.min_delta)
    if not broadcast_flag(reason is not None, run.info, run.device):
        return False
    if reason:
        console.print(f"[yellow]{reason}[/yellow]")
        run.recorder.note(reason)
    return True


def end_status(err: BaseException | None) -> str:
    """How a run ended, in the trackers' words."""
    if err is None:
        return "FINISHED"
    return "KILLED" if isinstance(err, (TrainingInterrupted, KeyboardInterrupt)) else "FAILED"


def finish_writes(run: Run, status: str) -> None:
    """On every way out: the checkpoints being written are completed, the records closed
    (``status``: how the run ended, for the trackers)."""
    try:
        run.writer.wait()
    finally:
        if run.recorder is not None:
            run.recorder.close(status)


def score_row(cfg: TrainConfig, run_dir: Path, best_epoch: int, best: dict) -> dict:
    return {"run": run_dir.resolve().name, "model": cfg.model, "epochs": cfg.epochs,
            "batch_size": cfg.batch_size, "lr": cfg.lr, "amp": cfg.amp,
            "channels_last": cfg.channels_last, "best_epoch": best_epoch,
            **{k: best.get(k, "") for k in (*METRICS, "img_per_s")},
            "finished": datetime.now().isoformat(timespec="seconds")}
