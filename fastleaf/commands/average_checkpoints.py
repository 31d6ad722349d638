"""``fastleaf average-checkpoints``: the weight average of a run's best kept epochs.

    fastleaf train --data DIR --keep-top 3 --out runs/r18
    fastleaf average-checkpoints runs/r18 --top 3          # -> runs/r18/average-top3.pt
    fastleaf evaluate --checkpoint runs/r18/average-top3.pt --tta none
"""
from __future__ import annotations

import argparse

from ..errors import MissingFileError, UsageError

NAME = "average-checkpoints"
HELP = "average the weights of a run's K best epochs (train --keep-top K) into one checkpoint"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN", help="a run folder trained with --keep-top, or a k-fold "
                   "folder (each fold is averaged on its own)")
    p.add_argument("--top", type=int, required=True, metavar="K", help="epochs to average")
    p.add_argument("--out", help="checkpoint to write (default RUN/average-topK.pt)")


def averaged_inputs(run_dir) -> list:
    """What averaging reads: every kept epoch, and the data the run was trained on."""
    from ..errors import FastleafError
    from ..data.table import data_files
    from ..predict.run_folder import read_folder_config
    from ..train.topk import read_top

    inputs = [run_dir / e["file"] for e in read_top(run_dir)]
    try:
        inputs += data_files(read_folder_config(run_dir)[0].data)
    except FastleafError:       # no readable config or the data moved: nothing to overwrite
        pass
    return inputs


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..train.topk import LEDGER, average_checkpoints, read_top
    from ..utils.console import console, shown
    from ..utils.paths import output_file

    root = Path(args.run)
    if (root / LEDGER).is_file():
        runs = [root]
    else:
        runs = [ledger.parent for ledger in sorted(root.glob(f"fold*/{LEDGER}"))]
    if not runs:
        raise MissingFileError(f"{root}: no {LEDGER}; train with --keep-top {args.top} first")
    if args.out and len(runs) > 1:
        raise UsageError("--out names one file; a k-fold folder writes one average per fold")
    for run_dir in runs:
        if args.out:
            output_file(args.out, "--out", averaged_inputs(run_dir))
        path = average_checkpoints(run_dir, args.top, args.out)
        epochs = [e["epoch"] for e in read_top(run_dir)[:args.top]]
        console.print(f"{shown(path)}: mean weights of epochs {epochs}")
    return 0
