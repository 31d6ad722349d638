"""``fastleaf predict``: the species in a photo (top-k table) or in each photo of a folder (CSV).

    fastleaf predict leaf.jpg --checkpoint runs/resnet18 --top 5
    fastleaf predict photos/ --checkpoint runs/resnet18 --out predictions.csv
    fastleaf predict leaf.jpg --model resnet18.onnx      # ONNX Runtime, torch is not imported
"""
from __future__ import annotations

import argparse

from ..predict.settings import PredictSettings

NAME = "predict"
HELP = "name the species in a photo, or in every photo of a folder (CSV)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..vocab import TTA_NAMES
    from .tta_predict import TTA_HELP, add_prediction_arguments

    p.add_argument("target", metavar="IMAGE_OR_FOLDER",
                   help="a photo (any size, any format Pillow reads) or a folder of photos")
    p.add_argument("--tta", choices=TTA_NAMES, default=PredictSettings.tta, help=TTA_HELP)
    p.add_argument("--top", type=int, default=5, help="species listed for one photo (5)")
    p.add_argument("--out", metavar="FILE", default="predictions.csv",
                   help="for a folder: the image,label,probability CSV (predictions.csv)")
    add_prediction_arguments(p, inherit=False, checkpoint_required=False, exported=True)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..utils.console import console, shown
    from .tta_predict import check_model_choice

    folder = Path(args.target).is_dir()
    out = args.out if folder else None
    if check_model_choice(args):
        # ONNX Runtime only: this branch must not import torch (tested)
        from ..export.onnx_runtime import predict_photos_onnx

        result = predict_photos_onnx(args.target, args.model, top=args.top, tta=args.tta,
                                     crop_fraction=args.crop_fraction,
                                     batch_size=args.batch_size, out=out)
        seconds, img_per_s = result.seconds, result.img_per_s
        caption = f"{result.info.model_name} (ONNX Runtime), tta {args.tta}"
    else:
        from ..predict.photos import predict_photos
        from .tta_predict import settings_from_args

        result = predict_photos(args.target, args.checkpoint, top=args.top,
                                weights=args.member_weights, settings=settings_from_args(args),
                                out=out)
        seconds, img_per_s = result.output.seconds, result.output.img_per_s
        ensemble = f", {len(result.members)} checkpoints" if len(result.members) > 1 else ""
        caption = f"{result.members[0].run.model_name}, tta {args.tta}{ensemble}"
    skipped = getattr(result, "skipped", [])
    if skipped:
        console.print(f"[yellow]skipped {len(skipped)} unreadable file(s):[/yellow]")
        for why in skipped:
            console.print(f"  {shown(why)}", soft_wrap=True)
    if folder:
        console.print(f"{len(result.files)} photos in {seconds:.1f} s "
                      f"({img_per_s:.1f} img/s): {shown(args.out)}")
        return 0
    print_top(Path(args.target).name, caption, result.top[0])
    return 0


def print_top(title: str, caption: str, top: list[tuple[str, float]]) -> None:
    from rich.table import Table

    from ..utils.console import console, shown

    table = Table(title=shown(title), caption=shown(caption))
    table.add_column("#", justify="right")
    table.add_column("species")
    table.add_column("probability", justify="right")
    for rank, (species, prob) in enumerate(top, start=1):
        table.add_row(str(rank), shown(species), f"{prob:.4f}")
    console.print(table)
