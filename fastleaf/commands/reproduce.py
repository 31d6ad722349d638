"""``fastleaf reproduce``: the paper's four models in one study folder, with a budget first."""
from __future__ import annotations

import argparse

from ..errors import UsageError

NAME = "reproduce"
HELP = ("train the paper's CNN, VGG16, ResNet18 and DeiT-tiny into one study folder (resumable) "
        "and report Table 3 with intervals, paired tests and the paper's figures")
MODELS = "cnn,vgg16,resnet18,deit_tiny"        # fastleaf.study.plan.MODELS, without its imports


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="Kaggle-layout folder (train.csv, images/)")
    p.add_argument("--out", default="runs/paper",
                   help="study folder: one run per model, study.yaml, report.html (runs/paper)")
    p.add_argument("--models", default=MODELS, help=f"comma-separated ({MODELS})")
    p.add_argument("--epochs", type=int, help="epochs per model (default: the recipes' 20; "
                   "--quick: chosen to fit --budget, at most 3)")
    p.add_argument("-b", "--batch-size", type=int, help="default: the recipes' 50")
    p.add_argument("--img-size", type=int, help="default: the recipes' 224")
    p.add_argument("--seed", type=int, default=0, help="split and training seed (0)")
    p.add_argument("--weights", action="append", default=[], metavar="MODEL=FILE",
                   help="start MODEL from a local weights file (repeatable), e.g. "
                        "deit_tiny=deit_tiny_patch16_224.safetensors for the paper's "
                        "pretrained frozen backbone")
    p.add_argument("--quick", action="store_true",
                   help="a stratified subset and fewer epochs, chosen so the study fits --budget")
    p.add_argument("--budget", type=float, default=20.0, metavar="MINUTES",
                   help="--quick: the minutes the whole study must fit, measuring included (20)")
    p.add_argument("--dry-run", action="store_true",
                   help="time the models, print the plan and the estimate, and stop")
    p.add_argument("--probe-steps", type=int, default=3,
                   help="training steps (and validation batches) timed per model (3)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("-j", "--workers", type=int, help="loader worker processes")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True,
                   help="live progress bars")


def run(args: argparse.Namespace) -> int:
    from ..study.plan import StudyOptions
    from ..study.runner import run_study

    if args.probe_steps < 1:
        raise UsageError(f"--probe-steps must be at least 1, got {args.probe_steps}")
    for flag, value in (("--epochs", args.epochs), ("--batch-size", args.batch_size),
                        ("--img-size", args.img_size)):
        if value is not None and value < 1:
            raise UsageError(f"{flag} must be at least 1, got {value}")
    weights = []
    for item in args.weights:
        model, sep, file = item.partition("=")
        if not sep or not model or not file:
            raise UsageError(f"--weights {item!r}: write MODEL=FILE, e.g. deit_tiny=deit.pth")
        weights.append((model.strip(), file.strip()))
    options = StudyOptions(
        data=args.data, out=args.out, models=tuple(m.strip() for m in args.models.split(",")
                                                   if m.strip()),
        epochs=args.epochs, batch_size=args.batch_size, img_size=args.img_size, seed=args.seed,
        quick=args.quick, budget_min=args.budget, device=args.device, workers=args.workers,
        progress=args.progress, weights=tuple(weights))
    run_study(options, dry_run=args.dry_run, probe_steps=args.probe_steps)
    return 0
