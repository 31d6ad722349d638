"""Where a data set's files are, and how a bad row is named: the small types every reader of
the layouts (:mod:`.table`, :mod:`.folders`, :mod:`.csv_source`) shares."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import FastleafError


class DataError(FastleafError, ValueError):
    """Bad input data; the message names the file and, where there is one, the CSV row."""


def csv_line(row: int) -> int:
    """The line an editor shows for 0-based data row ``row`` of a CSV file: line 1 is the
    header and lines count from 1, so data row 0 is on line 2."""
    return int(row) + 2


def csv_row(line: int) -> int:
    """The 0-based data row on ``line`` of a CSV file (the inverse of :func:`csv_line`)."""
    return int(line) - 2


@dataclass
class Layout:
    train_csv: Path
    test_csv: Path
    image_root: Path
    sources: tuple[Path, ...] = ()     # the user's CSVs a view was indexed from (inputs)
