"""``fastleaf demo``: synthesise a small data set, train the paper CNN briefly, print metrics.

A few minutes on a 2-core CPU; proves the install end to end without any download.
"""
from __future__ import annotations

import argparse

from .flags import add_deprecated

NAME = "demo"
HELP = "synthesise a small leaf data set and train the paper CNN on it (a few minutes on CPU)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="runs/demo", help="where the data and the run go (runs/demo)")
    add_deprecated(p, "--dir", "--out")
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--model", default="cnn")
    p.add_argument("--device", default="auto")


def run(args: argparse.Namespace) -> int:
    from ..config import resolve_config
    from ..data.synth import make_synthetic
    from ..train.summary import print_summary
    from ..train.trainer import fit
    from ..utils.console import console
    from ..utils.paths import output_folder

    root = output_folder(args.out, "--out")
    data = make_synthetic(root / "data", num_classes=args.classes, train_per_class=30,
                          test_per_class=4, size=224, seed=0)
    console.print(f"synthetic data set ({args.classes} classes): {data}")
    # --amp / --channels-last unset: the trainer picks what is measured fastest on the device
    cfg = resolve_config(data=str(data), model=args.model, epochs=args.epochs, batch_size=32,
                         lr=1e-3, augment="light",
                         device=args.device, out=str(root / f"{args.model}-demo"),
                         overwrite=True)    # the demo's own folder: a second demo replaces it
    result = fit(cfg)
    print_summary(result)
    chance = 1.0 / args.classes
    console.print(f"best accuracy {result.best['acc']:.3f} (chance {chance:.3f}); "
                  f"next: fastleaf train --data <your Kaggle folder> --config resnet18 "
                  f"(fastleaf configs lists the recipes)")
    return 0
