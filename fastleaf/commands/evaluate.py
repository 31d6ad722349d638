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
    from .flags import add_csv_arguments

    add_csv_arguments(p, test=False, root_default="--data, else the run's own image folder",
                      csv_help="a labelled CSV to score instead of the runs' validation splits "
                      "(every row, each with a label)")
    p.add_argument("--tta", choices=TTA_NAMES, default=PredictSettings.tta, help=TTA_HELP)
    add_prediction_arguments(p, inherit=True)


def run(args: argparse.Namespace) -> int:
    from ..predict.scoring import evaluate_checkpoints, print_evaluation
    from ..errors import UsageError
    from .tta_predict import settings_from_args

    if args.csv is None and (args.image_col or args.label_col or args.images_root):
        raise UsageError("--image-col, --label-col and --images-root describe a --csv FILE "
                         "to score; give it")
    result = evaluate_checkpoints(args.checkpoint, tta=args.tta, data_dir=args.data,
                                  csv=args.csv, weights=args.member_weights,
                                  settings=settings_from_args(args),
                                  columns=(args.image_col or "image", args.label_col or "label"),
                                  images_root=args.images_root)
    print_evaluation(result)
    return 0
