"""``fastleaf data-summary``: what a data folder holds, before training on it."""
from __future__ import annotations

import argparse

from ..errors import UsageError

NAME = "data-summary"
HELP = "count rows, classes and per-class images; check image sizes, modes and duplicates"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from .flags import DATA_HELP, add_csv_arguments

    p.add_argument("--data", help=DATA_HELP)
    add_csv_arguments(p)
    p.add_argument("--sample", type=int, help="inspect this many random images (default: all)")
    p.add_argument("--top", type=int, default=10, help="classes in the head and tail lists (10)")
    p.add_argument("--seed", type=int, default=0, help="seeds --sample (0)")


def counts_table(title: str, items, column: str = "images"):
    from rich.table import Table

    from ..utils.console import shown

    table = Table(title=shown(title), show_edge=False)
    table.add_column("name")
    table.add_column(column, justify="right")
    for name, count in items:
        table.add_row(shown(name), shown(count))
    return table


def print_data_summary(info: dict) -> None:
    """The summary as rich tables: overview, head and tail classes, sizes/modes, problems."""
    from rich.columns import Columns

    from ..utils.console import console, shown

    per = info["per_class"]
    console.print(counts_table(f"data {info['data']}", [
        ("train rows", info["train_rows"]), ("test rows", info["test_rows"]),
        ("classes", info["classes"]),
        ("images per class", f"{per['min']} min / {per['median']:g} median / "
                             f"{per['mean']:.1f} mean / {per['max']} max"),
        ("images inspected", info["images_checked"])], column="value"))
    console.print(Columns([counts_table("head: most images", info["head"]),
                           counts_table("tail: fewest images", info["tail"])]))
    console.print(Columns([counts_table("image sizes", info["sizes"].items()),
                           counts_table("modes", info["modes"].items()),
                           counts_table("formats", info["formats"].items())]))
    for row in info["duplicate_rows"][:10]:
        console.print(f"[yellow]listed twice:[/yellow] {shown(row['image'])} "
                      f"({shown(', '.join(row['rows']))})")
    for group in info["duplicate_files"][:10]:
        console.print(f"[yellow]identical files:[/yellow] {shown(', '.join(group))}")
    for bad in info["unreadable"][:10]:
        console.print(f"[red]unreadable:[/red] {shown(bad['where'])}: {shown(bad['error'])}")
    console.print(f"{len(info['duplicate_rows'])} image(s) listed more than once, "
                  f"{len(info['duplicate_files'])} group(s) of identical files, "
                  f"{len(info['unreadable'])} unreadable")


def run(args: argparse.Namespace) -> int:
    from ..data.summary import summarize_data
    from .flags import data_from_args

    data = data_from_args(args)
    if data is None:
        raise UsageError("name the data: --data DIR, or --csv FILE (any CSV)")
    if args.sample is not None and args.sample < 1:
        raise UsageError(f"--sample must be at least 1, got {args.sample}")
    print_data_summary(summarize_data(data, sample=args.sample, seed=args.seed,
                                      top=args.top))
    return 0
