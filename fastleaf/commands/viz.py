"""``fastleaf viz``: pictures of a trained model (filters, feature maps, attention rollout)."""
from __future__ import annotations

import argparse

from ..errors import UsageError

NAME = "viz"
HELP = "draw a checkpoint's filters or one image's feature maps / attention as PNGs"


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="viz", metavar="WHAT", required=True)
    f = sub.add_parser("filters", help="first-layer RGB filters and one deeper filter's kernels")
    f.add_argument("--checkpoint", required=True, help="best.pt / last.pt, or a run folder")
    f.add_argument("--out", default="viz", help="folder for the PNGs (viz)")
    f.add_argument("--layer", help="convolution to draw in grey (default: the second one)")
    f.add_argument("--channel", type=int, default=0, help="which filter of --layer (0)")
    m = sub.add_parser("feature-maps",
                       help="feature maps of one image (attention rollout for ViTs)")
    m.add_argument("--checkpoint", required=True, help="best.pt / last.pt, or a run folder")
    m.add_argument("--image", required=True, help="image file to run through the model")
    m.add_argument("--out", default="viz", help="folder for the PNGs (viz)")
    m.add_argument("--layer", action="append", dest="layers", metavar="NAME",
                   help="module name from model.named_modules() (repeatable); "
                        "default: the first conv block")
    m.add_argument("--max-channels", type=int, default=64, help="tiles per grid (64)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..utils.console import console, shown
    from ..utils.paths import output_file, output_folder

    output_folder(args.out, "--out")
    if args.viz == "feature-maps":     # the input image may sit in the output folder
        output_file(Path(args.out) / "input.png", "--out", [args.image])
    if args.viz == "filters":
        from ..viz.filters import write_filter_figures

        paths = write_filter_figures(args.checkpoint, args.out, args.layer, args.channel)
    else:
        from ..viz.feature_maps import write_feature_maps

        if args.max_channels < 1:
            raise UsageError(f"--max-channels must be at least 1, got {args.max_channels}")
        paths = write_feature_maps(args.checkpoint, args.image, args.out, args.layers,
                                   args.max_channels)
    for path in paths:
        console.print(f"wrote {shown(path)}", soft_wrap=True)
    return 0
