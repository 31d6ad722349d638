"""The data check that runs before training: stop with the full list, or drop bad rows.

    checked = preflight("data/classify-leaves", skip_bad=False)  # raises DataError listing errors
    checked.drop                                                 # train rows to leave out
    checked.write(run_dir)                                       # run_dir/bad_rows.csv
    apply_audit(checked, train_csv, exclude="audit.csv", relabel=None)   # --exclude/--relabel
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..utils.console import console
from .check import CheckReport, check_data
from .table import DataError, resolve_layout

SHOW = 20   # findings listed in an error message before "... and N more"


def listing(findings) -> str:
    """The first findings, one a line: a sentence on a terminal, ``severity kind file:line
    image: problem`` for a pipe or a log."""
    plain = not console.is_terminal
    lines = [f.one_line() if plain else f"  {f.message}" for f in findings[:SHOW]]
    if len(findings) > SHOW:
        lines.append(f"  ... and {len(findings) - SHOW} more (fastleaf check-data lists all)")
    return "\n".join(lines)


@dataclass
class Preflight:
    """The train.csv rows to leave out, the findings that made them bad, and new labels."""

    drop: set[int] = field(default_factory=set)
    report: CheckReport | None = None
    dropped: list = field(default_factory=list)     # findings of the dropped rows
    relabel: dict[int, str] = field(default_factory=dict)   # train.csv row -> label
    train_csv: Path | None = None

    def write(self, run_dir: Path) -> Path | None:
        """``run_dir/bad_rows.csv``: the findings of the dropped rows only (none: no file);
        ``run_dir/relabel.csv`` when labels change."""
        if self.relabel:
            from .audit_rows import write_relabel

            write_relabel(run_dir, self.train_csv, self.relabel)
        if not self.drop:
            return None
        report = self.report or CheckReport([], 0, 0.0)
        return report.write_csv(Path(run_dir) / "bad_rows.csv", self.dropped)


def apply_audit(checked: Preflight, train_csv: Path, *, exclude: str | None,
                relabel: str | None) -> Preflight:
    """Add an audit's rows to the drop list (``--exclude``) and its labels (``--relabel``)."""
    from .audit_rows import excluded_rows, relabelled_rows

    if exclude:
        found = excluded_rows(exclude, train_csv)
        checked.dropped += [found[r] for r in sorted(set(found) - checked.drop)]
        checked.drop |= set(found)
    if relabel:
        checked.relabel = relabelled_rows(relabel, train_csv)
        checked.train_csv = train_csv
    if exclude or relabel:
        console.print(f"audit: {len(found) if exclude else 0} row(s) left out, "
                      f"{len(checked.relabel)} relabelled; listed in the run folder")
    return checked


def preflight(data_dir, *, skip_bad: bool = False, image_size: int | None = None,
              quiet: bool = False) -> Preflight:
    """Check the data; return the train.csv rows to drop (empty unless ``skip_bad``).

    Errors in train.csv stop the run (``DataError`` with every problem) unless ``skip_bad``,
    which drops those rows (``Preflight.write`` lists them in the run folder).  Problems in
    test.csv do not block training; they are reported (prediction refuses them).
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
    if not quiet:
        say(report, drop, other_errors)
    return Preflight(drop, report, [f for f in train_errors if f.row in drop])


def say(report: CheckReport, drop: set[int], other_errors) -> None:
    notes = report.counts()
    warned = ", ".join(f"{n} {kind}" for (sev, kind), n in sorted(notes.items())
                       if sev == "warning")
    console.print(f"data check: {report.images_checked} images in {report.seconds:.1f}s"
                  f"{'; notes: ' + warned if warned else ''}")
    if drop:
        console.print(f"[yellow]skipping {len(drop)} bad train row(s); listed in the run "
                      f"folder's bad_rows.csv[/yellow]")
    if other_errors:
        console.print(f"[yellow]{len(other_errors)} problem(s) outside train.csv (prediction "
                      f"will refuse them):[/yellow]\n" + listing(other_errors))
