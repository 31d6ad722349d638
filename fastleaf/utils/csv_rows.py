"""Small CSV tables of dict rows (run records, fold and score tables, relabelled rows), read
whole and rewritten whole, atomically."""
from __future__ import annotations

import csv
import io
from pathlib import Path

from .atomic import write_text_atomic


def read_rows(path: Path) -> list[dict]:
    if not Path(path).is_file():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def write_rows(path: Path, columns, rows: list[dict]) -> None:
    """Rewrite the whole CSV atomically (small files): never a half-written row."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: fmt(row.get(k, "")) for k in columns})
    write_text_atomic(path, buf.getvalue())


def fmt(value):
    return f"{value:.9g}" if isinstance(value, float) else value
