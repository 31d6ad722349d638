"""``fastleaf blend``: weights for k-fold runs from their out-of-fold predictions -> blend.json.

    fastleaf blend runs/k5-a runs/k5-b --out blend.json
    fastleaf tta-predict --data DIR --blend blend.json --out submission.csv
"""
from __future__ import annotations

import argparse

from ..vocab import METRICS

NAME = "blend"
HELP = "search blend weights of k-fold runs on their out-of-fold predictions (blend.json)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("runs", nargs="+", metavar="KFOLD_RUN",
                   help="k-fold run folders (train --folds K) holding oof.csv and oof_probs.npy")
    p.add_argument("--out", default="blend.json", help="blend file to write (blend.json)")
    p.add_argument("--metric", choices=METRICS, default="acc",
                   help="out-of-fold metric to maximise (acc: what Kaggle scores)")
    p.add_argument("--temperature", action="store_true",
                   help="also fit one softmax temperature per member (by log-loss)")


def print_blend(result, out) -> None:
    from rich.table import Table

    from ..utils.console import console, shown

    table = Table(title=f"out-of-fold scores over {result.rows} rows (blend by {result.metric})",
                  show_edge=False)
    for column in ("member", "weight", "temperature", *METRICS):
        table.add_column(column, justify="right")
    for run, w, t, cv in zip(result.runs, result.weights, result.temperatures, result.member_cv):
        table.add_row(shown(run), f"{w:.3f}", f"{t:.3f}",
                      *(f"{cv[k]:.4f}" for k in METRICS))
    table.add_row("equal weights", "", "", *(f"{result.equal_cv[k]:.4f}" for k in METRICS))
    table.add_row("blend", "1.000", "", *(f"{result.cv[k]:.4f}" for k in METRICS), style="bold")
    console.print(table)
    held = result.held_back
    if len(result.runs) > 1:
        console.print(f"held-back check ({result.metric}, search on one half, score on the "
                      f"other): searched {held['searched']:.4f} vs equal {held['equal']:.4f} -> "
                      f"{held['kept']} weights kept")
    console.print(f"blend file: {shown(out)}")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..predict.blend import blend_runs, write_blend
    from ..predict.oof import OOF_CSV, OOF_PROBS
    from ..utils.paths import output_file

    output_file(args.out, "--out", [Path(r) / name for r in args.runs
                                    for name in (OOF_CSV, OOF_PROBS)])
    result = blend_runs(args.runs, metric=args.metric, temperature=args.temperature)
    print_blend(result, write_blend(args.out, result))
    return 0
