"""``fastleaf pseudo-label``: a new data folder whose train.csv adds confident test predictions.

    fastleaf pseudo-label --checkpoint runs/k5 --data DIR --threshold 0.9 --out DIR-pseudo
    fastleaf train --data DIR-pseudo --folds 5 --out runs/k5-pseudo
"""
from __future__ import annotations

import argparse

from ..errors import UsageError
from ..predict.settings import PredictSettings

NAME = "pseudo-label"
HELP = ("write a data folder whose train.csv adds test rows predicted with confidence "
        ">= --threshold (marked source=pseudo; images referenced, not copied)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..vocab import TTA_NAMES
    from .tta_predict import TTA_HELP, add_prediction_arguments

    p.add_argument("--data", help="Kaggle-layout folder (train.csv, test.csv, images/)")
    p.add_argument("--out", required=True, metavar="NEW_DIR",
                   help="the new data folder (train.csv, test.csv, data.yaml)")
    p.add_argument("--threshold", type=float, default=0.9,
                   help="lowest ensemble probability of the predicted class kept (0.9)")
    p.add_argument("--tta", choices=TTA_NAMES, default=PredictSettings.tta, help=TTA_HELP)
    p.add_argument("--blend", metavar="FILE", help="blend.json (instead of --checkpoint)")
    add_prediction_arguments(p, inherit=False, checkpoint_required=False)


def run(args: argparse.Namespace) -> int:
    from ..predict.pseudo import pseudo_label
    from ..utils.console import console, shown
    from .tta_predict import settings_from_args

    if args.member_weights:
        raise UsageError("--member-weights: pseudo-label weighs --checkpoint runs equally; "
                         "use fastleaf blend for weights")
    result = pseudo_label(args.data, args.out, checkpoints=args.checkpoint or [],
                          blend=args.blend, threshold=args.threshold,
                          settings=settings_from_args(args))
    top = ", ".join(f"{shown(name)} {n}" for name, n in list(result.per_class.items())[:5])
    console.print(f"{result.added} of {result.test_rows} test rows at confidence >= "
                  f"{args.threshold} added to {result.train_rows} training rows"
                  f"{f' (most: {top})' if top else ''}")
    console.print(f"new data folder: {shown(result.out_dir)} (train with: fastleaf train "
                  f"--data {shown(result.out_dir)})")
    return 0
