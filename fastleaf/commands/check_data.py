"""``fastleaf check-data``: check the CSVs and every image before training; exit 1 on errors.

    fastleaf check-data --data data/classify-leaves
    fastleaf check-data --data data/classify-leaves --classes runs/r18/best.pt --out bad_rows.csv
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import MissingFileError
from .flags import DATA_HELP, add_csv_arguments, add_deprecated, data_from_args

NAME = "check-data"
HELP = "check train.csv, test.csv and every image they name; exit 1 when there are errors"
SEVERITY_STYLE = {"error": "bold red", "warning": "yellow"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", help=f"{DATA_HELP}; default: references/*.csv with images "
                   "under data/")
    add_csv_arguments(p)
    p.add_argument("--classes", metavar="FILE",
                   help="valid class names: a checkpoint (.pt), a JSON list or one name a line; "
                   "default DATA/classes.json when present, else train.csv's labels")
    p.add_argument("--no-decode", action="store_true",
                   help="skip full decoding: headers, end markers and duplicates only (faster)")
    p.add_argument("-j", "--workers", type=int, help="images read and decoded at once (threads)")
    p.add_argument("--img-size", type=int,
                   help="expected image side in pixels (default: the most common size)")
    add_deprecated(p, "--image-size", "--img-size", type=int)
    p.add_argument("--out", metavar="FILE", help="write every finding to this CSV")
    p.add_argument("--max-lines", type=int, default=50, help="findings shown in the table (50)")
    p.add_argument("--near-duplicates", action="store_true",
                   help="also find visually identical images (perceptual hash): train pairs "
                        "with conflicting labels, train copies, test copies of train images")
    p.add_argument("--max-distance", type=int, default=None, metavar="BITS",
                   help="hash bits (of 256) two near-copies may differ in (16)")
    p.add_argument("--pairs-out", metavar="FILE", help="write every near-duplicate pair to CSV")


def load_class_file(path: str | Path) -> list[str]:
    """Class names from a checkpoint (.pt/.pth), a JSON list or a text file of one per line."""
    path = Path(path)
    if path.suffix in (".pt", ".pth") or path.is_dir():
        from ..train.checkpoint import load_checkpoint

        return list(load_checkpoint(path)["classes"])
    if not path.is_file():
        raise MissingFileError(f"class list not found: {path}")
    if path.suffix == ".json":
        from ..data.table import load_classes

        return list(load_classes(path))
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def print_report(report, max_lines: int = 50) -> None:
    """A table of findings (errors first, capped at ``max_lines``) and a one-line summary."""
    from rich.table import Table

    from ..utils.console import console, shown

    if report.findings and not console.is_terminal:
        # a pipe or a log: one finding a line, never a wrapped table
        for f in report.findings[:max_lines]:
            console.print(shown(f.one_line()), highlight=False, soft_wrap=True)
    elif report.findings:
        table = Table(show_header=True, header_style="bold", show_lines=False)
        table.add_column("severity", no_wrap=True)
        table.add_column("kind", no_wrap=True)
        table.add_column("where", no_wrap=True)
        table.add_column("image", overflow="fold")
        table.add_column("problem", overflow="fold", ratio=1)
        for f in report.findings[:max_lines]:
            where = f.csv.name if f.line is None else f"{f.csv.name}:{f.line}"
            table.add_row(f"[{SEVERITY_STYLE[f.severity]}]{f.severity}[/]", f.kind, shown(where),
                          "" if f.image is None else shown(f.image), shown(f.detail))
        console.print(table)
        if len(report.findings) > max_lines:
            console.print(f"... and {len(report.findings) - max_lines} more findings "
                          f"(--out FILE writes them all)")
    kinds = ", ".join(f"{n} {kind}" for (_, kind), n in sorted(report.counts().items()))
    status = "[bold green]OK[/]" if report.ok else "[bold red]FAILED[/]"
    console.print(f"{status}: {report.rows_checked} rows, {report.images_checked} images checked "
                  f"in {report.seconds:.1f}s: {len(report.errors())} errors, "
                  f"{len(report.warnings())} warnings" + (f" ({kinds})" if kinds else "")
                  + f"; labels checked against {report.label_rule}", soft_wrap=True)


def run(args: argparse.Namespace) -> int:
    from ..data.check import check_data
    from ..data.check_images import MAX_READERS
    from ..data.table import data_files
    from ..errors import FastleafError
    from ..utils.console import console
    from ..utils.paths import output_file

    if args.workers is not None and args.workers < 1:
        raise FastleafError(f"--workers {args.workers}: needs at least 1 thread")
    if args.workers is not None and args.workers > MAX_READERS:
        console.print(f"[yellow]note: --workers {args.workers} is more threads than reading "
                      f"files can use; reading with {MAX_READERS}[/yellow]", soft_wrap=True)
    args.data = data_from_args(args)
    extra = [args.classes] if args.classes else []
    inputs = [*data_files(args.data), *extra]
    for flag, out in (("--out", args.out), ("--pairs-out", args.pairs_out)):
        if out:
            output_file(out, flag, inputs)
    classes = load_class_file(args.classes) if args.classes else None
    report = check_data(args.data, classes=classes, decode=not args.no_decode,
                        workers=args.workers, image_size=args.img_size)
    print_report(report, args.max_lines)
    if args.out:
        console.print(f"findings written to {report.write_csv(args.out)}")
    if args.near_duplicates:
        print_near_duplicates(args, args.max_lines)
    return 0 if report.ok else 1


def print_near_duplicates(args: argparse.Namespace, max_lines: int) -> None:
    """Near-duplicate pairs, conflicting labels first, and a one-line count per kind."""
    from ..data.dedup import MAX_DISTANCE
    from ..data.near_duplicates import KINDS, find_near_duplicates
    from ..utils.console import console, shown

    found = find_near_duplicates(args.data, MAX_DISTANCE if args.max_distance is None
                                 else args.max_distance, workers=args.workers)
    for pair in found.frame.head(max_lines).itertuples():
        style = "bold red" if pair.kind == "conflicting_labels" else "yellow"
        b_label = f" ({pair.b_label})" if pair.b_label else ""
        console.print(f"[{style}]{pair.kind}[/]: {shown(pair.b_csv)} line {pair.b_line} "
                      f"{shown(pair.b_image)}{shown(b_label)} = {shown(pair.a_csv)} line "
                      f"{pair.a_line} {shown(pair.a_image)} ({shown(pair.a_label)}); "
                      f"{pair.distance} bits apart", soft_wrap=True)
    counts = ", ".join(f"{len(found.of_kind(k))} {k}" for k in KINDS)
    console.print(f"near-duplicates among {found.images} images (pHash, <= {found.max_distance} "
                  f"of 256 bits): {counts}", soft_wrap=True)
    if args.pairs_out:
        console.print(f"pairs written to {found.write_csv(args.pairs_out)}")
