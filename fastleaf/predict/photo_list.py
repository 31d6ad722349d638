"""Which photos a ``predict`` target names, and the ``image,label,probability`` CSV it writes.

Free of torch: ``fastleaf predict`` with a checkpoint (``photos``) and with an exported model
(``fastleaf.export.onnx_runtime``) find the same photos in the same order and write the same
file.

    files = find_photos("photos/")                    # leaf2.jpg before leaf10.jpg
    best = top_species(probs, classes, k=5)           # per photo [(species, probability), ...]
    write_photo_csv("predictions.csv", files, best, root=Path("photos"))
"""
from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Sequence

import numpy as np

from ..data.table import DataError
from ..utils.atomic import write_text_atomic

# what a folder's photos may be; anything else in it (CSVs, notes) is left alone
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif")

Ranked = list[list[tuple[str, float]]]


def _natural_key(path: Path):
    # leaf2.jpg before leaf10.jpg
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


def find_photos(target: str | Path) -> list[Path]:
    """``target`` itself when it is a file, else the photos directly inside the folder."""
    path = Path(target)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise DataError(f"{path}: no such image or folder")
    photos = sorted((p for p in path.iterdir()
                     if p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES), key=_natural_key)
    if not photos:
        raise DataError(f"{path}: no photos in this folder ({', '.join(PHOTO_SUFFIXES)})")
    return photos


def top_species(probs: np.ndarray, classes: Sequence[str], k: int) -> Ranked:
    """Per row of ``probs`` ``(N, classes)``, the ``k`` most likely species, most likely first
    (ties keep the class order, as ``torch.topk`` on CPU does)."""
    k = min(k, len(classes))
    order = np.argsort(-np.asarray(probs, dtype=np.float64), axis=-1, kind="stable")[:, :k]
    return [[(classes[int(i)], float(row[i])) for i in idx] for row, idx in zip(probs, order)]


def write_photo_csv(path: str | Path, files: Sequence[Path], top: Ranked,
                    root: Path | None = None) -> Path:
    """``image,label,probability``: one row per photo (names relative to ``root``)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["image", "label", "probability"])
    for file, best in zip(files, top):
        name = file.relative_to(root).as_posix() if root else file.as_posix()
        writer.writerow([name, best[0][0], f"{best[0][1]:.6f}"])
    write_text_atomic(path, buffer.getvalue())
    return Path(path)
