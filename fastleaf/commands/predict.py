"""``fastleaf predict``: the species in a photo (top-k table) or in each photo of a folder (CSV).

    fastleaf predict leaf.jpg --checkpoint runs/resnet18 --top 5
    fastleaf predict photos/ --checkpoint runs/resnet18 --out predictions.csv
"""
from __future__ import annotations

import argparse

from ..predict.settings import PredictSettings

NAME = "predict"
HELP = "name the species in a photo, or in every photo of a folder (CSV)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..predict import TTA_NAMES
    from .tta_predict import TTA_HELP, add_prediction_arguments

    p.add_argument("target", metavar="IMAGE_OR_FOLDER",
                   help="a photo (any size, any format Pillow reads) or a folder of photos")
    p.add_argument("--tta", choices=TTA_NAMES, default=PredictSettings.tta, help=TTA_HELP)
    p.add_argument("--top", type=int, default=5, help="species listed for one photo (5)")
    p.add_argument("--out", metavar="FILE", default="predictions.csv",
                   help="for a folder: the image,label,probability CSV (predictions.csv)")
    add_prediction_arguments(p, inherit=False)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rich.table import Table

    from ..predict.photos import predict_photos
    from ..utils.console import console, shown
    from .tta_predict import settings_from_args

    folder = Path(args.target).is_dir()
    result = predict_photos(args.target, args.checkpoint, top=args.top,
                            weights=args.member_weights, settings=settings_from_args(args),
                            out=args.out if folder else None)
    if result.skipped:
        console.print(f"[yellow]skipped {len(result.skipped)} unreadable file(s):[/yellow]")
        for why in result.skipped:
            console.print(f"  {shown(why)}", soft_wrap=True)
    if folder:
        console.print(f"{len(result.files)} photos in {result.output.seconds:.1f} s "
                      f"({result.output.img_per_s:.1f} img/s): {shown(args.out)}")
        return 0
    ensemble = f", {len(result.members)} checkpoints" if len(result.members) > 1 else ""
    table = Table(title=shown(Path(args.target).name),
                  caption=f"{shown(result.members[0].run.model_name)}, tta {args.tta}{ensemble}")
    table.add_column("#", justify="right")
    table.add_column("species")
    table.add_column("probability", justify="right")
    for rank, (species, prob) in enumerate(result.top[0], start=1):
        table.add_row(str(rank), shown(species), f"{prob:.4f}")
    console.print(table)
    return 0
