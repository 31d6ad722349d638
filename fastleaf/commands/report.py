"""``fastleaf report``: curves, a comparison table and the worst mistakes of finished runs."""
from __future__ import annotations

import argparse

from ..errors import UsageError

NAME = "report"
HELP = "compare run folders: curves, table, confusions, class counts (PNGs + report.html/.md)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("runs", nargs="+", metavar="RUN", help="run folders (metrics.csv, best.pt, ...)")
    p.add_argument("--out", required=True, help="folder for the report")
    p.add_argument("--no-confusion", dest="confusion", action="store_false",
                   help="skip the confusion analysis (it re-reads the validation images)")
    p.add_argument("--confusion-all", action="store_true",
                   help="confusion analysis for every run (default: the best run only)")
    p.add_argument("--worst", type=int, default=15, help="worst classes to chart (15)")
    p.add_argument("--pairs", type=int, default=10, help="most confused pairs to chart (10)")
    p.add_argument("--device", default="auto", help="where validation predictions run (auto)")
    p.add_argument("--workers", type=int, default=0, help="loader worker processes (0)")


def run(args: argparse.Namespace) -> int:
    from ..utils.console import console, shown
    from ..utils.paths import output_folder
    from ..report.build import build_report

    if args.worst < 1 or args.pairs < 1:
        raise UsageError("--worst and --pairs must be at least 1")
    output_folder(args.out, "--out")
    written = build_report(args.runs, args.out, confusion=args.confusion,
                           confusion_all=args.confusion_all, top_pairs=args.pairs,
                           worst=args.worst, device=args.device, workers=args.workers)
    for path in written.values():
        console.print(f"wrote {shown(path)}", soft_wrap=True)
    return 0
