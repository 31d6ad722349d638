"""Pairs of near-identical images among a data folder's rows (``check-data --near-duplicates``
and the audit): each pair with its kind, the CSV lines and labels of both images.

    found = find_near_duplicates("data/classify-leaves")
    found.of_kind("conflicting_labels")        # one of the two is mislabelled
    found.write_csv("near_duplicates.csv")

The hashing and pairing are :mod:`fastleaf.data.dedup`'s; this module reads the folder.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..utils.atomic import atomic_path
from .dedup import MAX_DISTANCE, image_hashes, near_pairs
from .table import csv_line, image_path, read_frame, resolve_layout


@dataclass
class NearDuplicates:
    """Pairs of near-identical images in a data folder, each a row of :attr:`frame`."""

    frame: pd.DataFrame       # kind, distance, a_csv, a_line, a_image, a_label, b_...
    images: int
    max_distance: int

    def of_kind(self, kind: str) -> pd.DataFrame:
        return self.frame[self.frame["kind"] == kind]

    def write_csv(self, path: str | Path) -> Path:
        with atomic_path(path) as tmp:
            self.frame.to_csv(tmp, index=False)
        return Path(path)


KINDS = ("conflicting_labels", "train_copy", "test_copy_of_train", "test_copy")


def pair_kind(a_csv: str, b_csv: str, a_label, b_label) -> str:
    if a_csv == b_csv == "train.csv":
        return "conflicting_labels" if a_label != b_label else "train_copy"
    if a_csv != b_csv:
        return "test_copy_of_train"
    return "test_copy"


def find_near_duplicates(data_dir=None, max_distance: int = MAX_DISTANCE,
                         workers: int | None = None) -> NearDuplicates:
    """Every pair of near-identical images among train.csv and test.csv rows.

    Args:
        data_dir: Kaggle-layout folder (as ``load_table``).
        max_distance: differing hash bits (of 256) that still count as the same picture.
    Returns:
        :class:`NearDuplicates`; train rows come first in each pair, lines are CSV lines.
    """
    layout = resolve_layout(data_dir)
    refs = []      # (csv name, line, image, label, path)
    for csv, columns in ((layout.train_csv, ("image", "label")), (layout.test_csv, ("image",))):
        frame, _ = read_frame(csv, columns)
        if frame is None:
            continue        # check-data reports whole-file problems itself
        labels = frame["label"] if "label" in frame.columns else [""] * len(frame)
        for row, (image, label) in enumerate(zip(frame["image"], labels)):
            try:
                path = image_path(layout.image_root, image, csv, row)
            except ValueError:
                continue    # escaping paths are never opened
            refs.append(("train.csv" if csv == layout.train_csv else "test.csv", csv_line(row),
                         image, label, path))
    hashes, readable = image_hashes([r[4] for r in refs], workers=workers)
    rows = []
    for i, j, d in near_pairs(hashes, max_distance, readable):
        a, b = refs[i], refs[j]
        if Path(a[4]).resolve() == Path(b[4]).resolve():
            continue        # one file listed twice: the exact-duplicate check's finding
        rows.append({"kind": pair_kind(a[0], b[0], a[3], b[3]), "distance": int(d),
                     **{f"a_{k}": v for k, v in zip(("csv", "line", "image", "label"), a)},
                     **{f"b_{k}": v for k, v in zip(("csv", "line", "image", "label"), b)}})
    columns = ["kind", "distance"] + [f"{s}_{k}" for s in "ab"
                                      for k in ("csv", "line", "image", "label")]
    frame = pd.DataFrame(rows, columns=columns)
    if len(frame):
        frame["order"] = frame["kind"].map(KINDS.index)
        frame = frame.sort_values(["order", "distance", "a_line"]).drop(columns="order")
    return NearDuplicates(frame.reset_index(drop=True), len(refs), max_distance)
