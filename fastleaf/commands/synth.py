"""``fastleaf synth``: write a deterministic synthetic leaf data set in the Kaggle layout."""
from __future__ import annotations

import argparse

from .flags import add_deprecated

NAME = "synth"
HELP = "write a synthetic leaf data set (Kaggle layout) for demos and tests"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="folder to write (images/, train.csv, test.csv)")
    p.add_argument("--classes", type=int, default=10, help="number of classes, 2 to 176 (10)")
    p.add_argument("--train-per-class", type=int, default=20)
    p.add_argument("--test-per-class", type=int, default=4)
    p.add_argument("--img-size", type=int, default=224, help="image side in pixels (224)")
    add_deprecated(p, "--size", "--img-size", type=int)
    p.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    from ..data.synth import make_synthetic
    from ..utils.console import console
    from ..utils.paths import output_folder

    output_folder(args.out, "--out", data_ok=True)      # a previous synth output is replaced
    out = make_synthetic(args.out, num_classes=args.classes, train_per_class=args.train_per_class,
                         test_per_class=args.test_per_class, size=args.img_size, seed=args.seed)
    console.print(f"wrote {args.classes * args.train_per_class} train and "
                  f"{args.classes * args.test_per_class} test images ({args.classes} classes) "
                  f"to {out}")
    return 0
