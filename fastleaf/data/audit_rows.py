"""``train --exclude audit.csv`` and ``train --relabel audit.csv``: the audit applied to a run,
never to the user's CSV.

    drop = excluded_rows("audit/audit.csv", layout.train_csv)      # {row: Finding}
    new = relabelled_rows("audit/audit.csv", layout.train_csv)     # {row: suggested label}

Both keep only train.csv rows (a test image's row is for the reader) and check that each row
still holds the image the audit saw, so an audit of another version of train.csv is refused
rather than applied to the wrong rows.  The run records the result in its own folder:
excluded rows in ``bad_rows.csv`` (kind ``audit``, as ``--skip-bad`` lists its rows),
new labels in ``relabel.csv``; readers of the run (``open_run``) apply both again.  Reading
the file is data work, below training and prediction, which both apply it; finding the rows
is :mod:`fastleaf.audit`'s.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..utils.csv_rows import write_rows
from .table import DataError, csv_line, csv_row, read_frame

RELABEL_CSV = "relabel.csv"
RELABEL_COLUMNS = ("line", "image", "label", "new_label")
NEEDED = ("image", "csv", "line", "suggested_label", "reason")


def read_audit(path) -> pd.DataFrame:
    """``audit.csv`` rows, strings; the message names a missing file or column."""
    path = Path(path)
    frame, problem = read_frame(path, NEEDED)
    if problem and problem[0] == "empty_csv" and path.is_file():
        return pd.DataFrame(columns=list(NEEDED))         # an audit that found nothing
    if problem:
        raise DataError(f"{path}: {problem[1]} (expected the audit.csv of fastleaf audit)")
    return frame


def train_findings(path, train_csv: Path) -> list[tuple[int, pd.Series]]:
    """``(train.csv row, audit row)`` of each training-image finding, checked against the CSV."""
    audit = read_audit(path)
    mine = audit[audit["csv"].map(lambda c: Path(c).name) == Path(train_csv).name]
    frame, problem = read_frame(train_csv, ("image", "label"))
    if problem:
        raise DataError(f"{train_csv}: {problem[1]}")
    out = []
    for i, finding in mine.iterrows():
        try:
            row = csv_row(int(finding["line"]))
        except ValueError:
            raise DataError(f"{path} line {csv_line(i)}: line {finding['line']!r} is not a "
                            f"number") from None
        if not 0 <= row < len(frame) or frame["image"].iloc[row] != finding["image"]:
            raise DataError(f"{path} line {csv_line(i)}: {train_csv} line {finding['line']} "
                            f"does not hold {finding['image']!r}; the audit is of another "
                            f"train.csv (run fastleaf audit again)")
        out.append((row, finding))
    return out


def excluded_rows(path, train_csv: Path) -> dict:
    """``{train.csv row: Finding}``: every training row the audit lists (``--exclude``)."""
    from .check import finding

    found = {}
    for row, f in train_findings(path, train_csv):
        found.setdefault(row, finding("audit", "error", train_csv, row, f["image"],
                                      f"left out by --exclude {path} ({f['reason']})"))
    return found


def relabelled_rows(path, train_csv: Path) -> dict[int, str]:
    """``{train.csv row: label}``: the suggested label of each training row that has one
    (``--relabel``); of several findings of a row the first, the audit's highest score."""
    new: dict[int, str] = {}
    known = set(read_frame(train_csv, ("image", "label"))[0]["label"])
    for row, f in train_findings(path, train_csv):
        label = f["suggested_label"].strip()
        if label and label not in known:
            # a typo in an edited audit.csv would otherwise train a class of its own
            raise DataError(f"{path}: suggested label {label!r} for {f['image']!r} is no "
                            f"label of {train_csv}")
        if label:
            new.setdefault(row, label)
    return new


def write_relabel(run_dir: Path, train_csv: Path, new: dict[int, str]) -> Path | None:
    """``run_dir/relabel.csv`` (line, image, label, new_label); none when nothing changes."""
    if not new:
        return None
    frame, _ = read_frame(train_csv, ("image", "label"))
    rows = [{"line": csv_line(r), "image": frame["image"].iloc[r], "label": frame["label"].iloc[r],
             "new_label": label} for r, label in sorted(new.items())]
    write_rows(Path(run_dir) / RELABEL_CSV, RELABEL_COLUMNS, rows)
    return Path(run_dir) / RELABEL_CSV


def read_relabel(run_dir: Path) -> dict[int, str]:
    """What :func:`write_relabel` wrote, as ``{train.csv row: label}`` (no file: nothing)."""
    path = Path(run_dir) / RELABEL_CSV
    if not path.is_file():
        return {}
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    return {csv_row(int(line)): label for line, label in zip(frame["line"], frame["new_label"])}
