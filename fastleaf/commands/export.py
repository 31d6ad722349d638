"""``fastleaf export``: a trained run -> an ONNX or TorchScript file with its metadata, checked.

    fastleaf export --checkpoint runs/resnet18 --out resnet18.onnx
    fastleaf export --checkpoint runs/resnet18/best.pt --format torchscript --out resnet18.ts
    fastleaf predict leaf.jpg --model resnet18.onnx          # no torch needed from here on
"""
from __future__ import annotations

import argparse

NAME = "export"
HELP = "export a trained run to ONNX or TorchScript, checked against PyTorch"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..export.model_info import ExportSettings

    own = ExportSettings()
    p.add_argument("--checkpoint", required=True, metavar="RUN",
                   help="a run folder (its best.pt) or a checkpoint file")
    p.add_argument("--format", choices=["onnx", "torchscript"], default=own.format,
                   help=f"file format ({own.format})")
    p.add_argument("--out", required=True, metavar="FILE", help="the file to write")
    p.add_argument("--batch", default=own.batch, metavar="dynamic|N",
                   help=f"batch dimension of the graph: dynamic, or fixed at N ({own.batch})")
    p.add_argument("--opset", type=int, default=own.opset, help=f"ONNX opset ({own.opset})")
    p.add_argument("--check", type=int, default=own.check, metavar="N",
                   help=f"validation images run through PyTorch and the export; 0 skips "
                        f"the check ({own.check})")
    p.add_argument("--tolerance", type=float, default=own.tolerance,
                   help=f"largest accepted |Δprob|; above it the file is not kept "
                        f"({own.tolerance:g})")
    p.add_argument("--data", help="the run's data folder, when it has moved since training")


def run(args: argparse.Namespace) -> int:
    from rich.markup import escape

    from ..errors import UsageError
    from ..export.exporter import ParityFailed, export_run
    from ..export.model_info import ExportSettings
    from ..utils.console import console

    if args.check < 0:
        raise UsageError(f"--check must be 0 or more, got {args.check}")
    settings = ExportSettings(format=args.format, batch=args.batch, opset=args.opset,
                              check=args.check, tolerance=args.tolerance)
    try:
        result = export_run(args.checkpoint, args.out, settings, data_dir=args.data)
    except ParityFailed as err:
        console.print(f"[bold red]parity failed:[/bold red] {escape(str(err))}; "
                      f"{escape(str(args.out))} not written", soft_wrap=True)
        return 1
    info = result.info
    console.print(f"{info.model_name}, {len(info.classes)} classes, {info.size} px, batch "
                  f"{info.batch}: {escape(str(result.path))}", soft_wrap=True)
    console.print(result.parity.line() if result.parity else "parity not checked (--check 0)")
    return 0
