"""``fastleaf evaluate``: a run's validation metrics without and with test-time augmentation."""
from __future__ import annotations

import argparse

from ..predict.settings import PredictSettings

NAME = "evaluate"
HELP = "score checkpoints on their validation split (or a labelled CSV) without and with TTA"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..vocab import TTA_NAMES
    from .tta_predict import TTA_HELP, add_prediction_arguments

    p.add_argument("--data", help="data folder (default: the run's own)")
    p.add_argument("--csv", help="labelled image,label CSV (paths relative to --data) to score "
                   "instead of the runs' validation splits")
    p.add_argument("--tta", choices=TTA_NAMES, default=PredictSettings.tta, help=TTA_HELP)
    add_prediction_arguments(p, inherit=True)


def run(args: argparse.Namespace) -> int:
    from ..predict.scoring import evaluate_checkpoints, print_evaluation
    from .tta_predict import settings_from_args

    result = evaluate_checkpoints(args.checkpoint, tta=args.tta, data_dir=args.data,
                                  csv=args.csv, weights=args.member_weights,
                                  settings=settings_from_args(args))
    print_evaluation(result)
    return 0
