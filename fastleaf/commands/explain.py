"""``fastleaf explain``: why a model chose a species, as heat-map overlays.

    fastleaf explain --checkpoint runs/resnet18 leaf.jpg            # Grad-CAM
    fastleaf explain --checkpoint runs/deit photos/ --out explain/  # attention rollout
"""
from __future__ import annotations

import argparse

NAME = "explain"
HELP = "class-activation overlays (Grad-CAM, Grad-CAM++; attention rollout for ViTs) with " \
       "the top-3 species, one PNG per image"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files or folders of them")
    p.add_argument("--checkpoint", required=True, help="best.pt / last.pt, or a run folder")
    p.add_argument("--out", default="explain", help="folder for the PNGs (explain)")
    p.add_argument("--method", choices=["auto", "gradcam", "gradcam++", "rollout"],
                   default="auto", help="auto: rollout for vision transformers, Grad-CAM "
                   "otherwise")


def run(args: argparse.Namespace) -> int:
    from ..explain.overlay import explain_images
    from ..utils.console import console

    for path in explain_images(args.checkpoint, args.images, args.out, args.method):
        console.print(f"wrote {path}", soft_wrap=True)
    return 0
