"""The data check that runs before training: stop with the full list, or drop bad rows.

    drop = preflight("data/classify-leaves", skip_bad=False)   # raises DataError listing errors
"""
from __future__ import annotations

from pathlib import Path

from ..utils.console import console
from .check import CheckReport, check_data
from .table import DataError, resolve_layout

SHOW = 20   # findings listed in an error message before "... and N more"


def listing(findings) -> str:
    lines = [f"  {f.message}" for f in findings[:SHOW]]
    if len(findings) > SHOW:
        lines.append(f"  ... and {len(findings) - SHOW} more (fastleaf check-data lists all)")
    return "\n".join(lines)


def preflight(data_dir, *, skip_bad: bool = False, run_dir: Path | None = None,
              image_size: int | None = None, quiet: bool = False) -> set[int]:
    """Check the data; return the train.csv rows to drop (empty unless ``skip_bad``).

    Errors in train.csv stop the run (``DataError`` with every problem) unless ``skip_bad``,
    which drops those rows and writes them to ``run_dir/bad_rows.csv``.  Problems in test.csv
    do not block training; they are reported (prediction refuses them).
    """
    report: CheckReport = check_data(data_dir, image_size=image_size)
    train_csv = resolve_layout(data_dir).train_csv
    whole_file = [f for f in report.errors() if f.row is None and f.csv == train_csv]
    if whole_file:
        raise DataError("train.csv cannot be used:\n" + listing(whole_file))
    train_errors = [f for f in report.errors() if f.csv == train_csv]
    other_errors = [f for f in report.errors() if f.csv != train_csv]
    if train_errors and not skip_bad:
        raise DataError(f"{len(train_errors)} bad row(s) in {train_csv}; fix them or pass "
                        f"--skip-bad to leave them out:\n" + listing(train_errors))
    drop = report.bad_rows(train_csv) if skip_bad else set()
    if drop and run_dir is not None:
        report.write_csv(Path(run_dir) / "bad_rows.csv")
    if not quiet:
        say(report, drop, other_errors, run_dir)
    return drop


def say(report: CheckReport, drop: set[int], other_errors, run_dir) -> None:
    notes = report.counts()
    warned = ", ".join(f"{n} {kind}" for (sev, kind), n in sorted(notes.items())
                       if sev == "warning")
    console.print(f"data check: {report.images_checked} images in {report.seconds:.1f}s"
                  f"{'; notes: ' + warned if warned else ''}")
    if drop:
        where = f"; listed in {Path(run_dir) / 'bad_rows.csv'}" if run_dir else ""
        console.print(f"[yellow]skipping {len(drop)} bad train row(s){where}[/yellow]")
    if other_errors:
        console.print(f"[yellow]{len(other_errors)} problem(s) outside train.csv (prediction "
                      f"will refuse them):[/yellow]\n" + listing(other_errors))
