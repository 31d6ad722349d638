"""``fastleaf serve``: a species-ID page and JSON API over a run or an exported model.

    fastleaf serve --model resnet18.onnx                 # http://127.0.0.1:8000
    fastleaf serve --model runs/resnet18 --port 8080
    curl --data-binary @leaf.jpg http://127.0.0.1:8000/predict
"""
from __future__ import annotations

import argparse

NAME = "serve"
HELP = "serve a page and a JSON API that name the species in an uploaded photo"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..serve import ServeSettings

    own = ServeSettings()
    p.add_argument("--model", required=True, metavar="RUN|FILE.onnx",
                   help="a run folder or checkpoint (PyTorch), or an exported .onnx file "
                        "(ONNX Runtime)")
    p.add_argument("--host", default=own.host,
                   help=f"address to listen on ({own.host}: this machine only; 0.0.0.0 opens "
                        f"it to the network)")
    p.add_argument("--port", type=int, default=own.port, help=f"port ({own.port})")
    p.add_argument("--max-upload-mb", type=float, default=own.max_upload_mb,
                   help=f"largest accepted upload in MiB ({own.max_upload_mb:g})")
    p.add_argument("--top", type=int, default=own.top, help=f"species per answer ({own.top})")


def run(args: argparse.Namespace) -> int:
    from ..errors import UsageError
    from ..serve import ServeSettings
    from ..serve.app import serve
    from ..utils.console import console

    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port {args.port}: expected 0 to 65535")
    if args.max_upload_mb <= 0 or args.top < 1:
        raise UsageError("--max-upload-mb must be > 0 and --top at least 1")
    settings = ServeSettings(host=args.host, port=args.port, max_upload_mb=args.max_upload_mb,
                             top=args.top)
    console.print(f"serving {args.model} on http://{args.host}:{args.port} (Ctrl+C stops)",
                  soft_wrap=True)
    serve(args.model, settings)
    return 0
