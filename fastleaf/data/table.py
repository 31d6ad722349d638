"""CSV -> table: image paths, labels, the class list, the train/validation split and k folds.

Read here (folder trees and any CSV through a Kaggle-layout view: :mod:`.csv_source`):

* the Kaggle zip (``--data DIR``): ``DIR/train.csv`` (``image,label``), ``DIR/test.csv``
  (``image``), ``DIR/images/*.jpg``, optionally ``DIR/sample_submission.csv``;
* the paper's repository layout (no ``--data``): CSVs in ``references/``, images under ``data/``.

    table = load_table("data/classify-leaves", val_fraction=0.2, seed=0)
    table.train, table.val, table.test        # Samples: paths, labels, CSV rows
"""
from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

from ..config import TrainConfig
from ..errors import FastleafError, UsageError
from .layout import DataError, Layout, csv_line, csv_row  # noqa: F401  (read from here too)

UNLABELLED = -1
PSEUDO = "pseudo"        # train.csv ``source`` of pseudo-labelled rows: they never validate
POINTER = "data.yaml"    # optional: ``image_root: FOLDER`` the image paths are relative to


@dataclass
class Samples:
    """An ordered selection of CSV rows; loaders keep this order for eval and test."""

    name: str
    paths: list[Path]
    labels: np.ndarray                 # int64 class ids, UNLABELLED for test rows
    rows: np.ndarray                   # 0-based data row in ``csv`` (see ``csv_line``)
    csv: Path
    images: list[str] = field(default_factory=list)   # the CSV's ``image`` strings

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def labelled(self) -> bool:
        return bool(len(self.labels)) and bool((self.labels >= 0).all())

    def subset(self, index, name: str | None = None) -> "Samples":
        index = np.asarray(index, dtype=np.int64)
        return Samples(name or self.name, [self.paths[i] for i in index], self.labels[index],
                       self.rows[index], self.csv, [self.images[i] for i in index])

    def repeat(self, min_count: int) -> "Samples":
        """This selection repeated until it holds at least ``min_count`` rows (benchmarks)."""
        reps = max(1, -(-min_count // max(1, len(self))))
        return self.subset(np.tile(np.arange(len(self)), reps), self.name)


@dataclass
class Table:
    layout: Layout
    classes: list[str]
    train: Samples
    val: Samples
    test: Samples | None
    all_train: Samples
    pseudo_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def split(self, name: str) -> Samples:
        samples = {"train": self.train, "val": self.val, "test": self.test,
                   "all": self.all_train}.get(name)
        if samples is None:
            raise DataError(f"no {name!r} split (test.csv missing?): {self.layout.test_csv}")
        return samples


def resolve_layout(data_dir: str | os.PathLike | None, project_root: Path | None = None) -> Layout:
    """Find the CSVs and the folder that image paths are relative to."""
    if data_dir is None:
        root = Path(project_root or Path.cwd())
        return Layout(root / "references" / "train.csv", root / "references" / "test.csv",
                      root / "data")
    from .csv_source import view_layout

    view = view_layout(data_dir)      # any CSV or a folder-per-class tree: an index of it
    if view is not None:
        return view
    root = Path(data_dir)
    return Layout(root / "train.csv", root / "test.csv", pointed_image_root(root))


def pointed_image_root(root: Path) -> Path:
    """``root``, or the folder that ``root/data.yaml``'s ``image_root`` names.

    A derived data folder (``fastleaf pseudo-label``) holds only CSVs and this pointer; its
    image entries stay relative to the original folder and must stay inside it, exactly as
    in the original.  A relative ``image_root`` is relative to ``root``; it must lie inside
    ``root`` or be a data folder itself (holding a train.csv).
    """
    pointer = root / POINTER
    if not pointer.is_file():
        return root
    from ..config import ConfigError, read_yaml

    try:
        data = read_yaml(pointer, str(pointer))
    except ConfigError as err:
        raise DataError(str(err)) from None
    if not isinstance(data, dict) or not isinstance(data.get("image_root"), str):
        raise DataError(f"{pointer}: expected a line 'image_root: FOLDER' (the folder the "
                        f"CSV image paths are relative to)")
    target = Path(data["image_root"]).expanduser()
    target = target if target.is_absolute() else root / target
    if not target.is_dir():
        raise DataError(f"{pointer}: image_root {target} is not a folder")
    # the symbolic-link rule for a pointer: images stay inside a data folder, this one or
    # the one a derived folder came from (it holds its own train.csv); never `/` or a home
    real, own = os.path.realpath(target), os.path.realpath(root)
    inside = real == own or real.startswith(own.rstrip(os.sep) + os.sep)
    if not inside and not (Path(real) / "train.csv").is_file():
        raise DataError(f"{pointer}: image_root {target} is neither inside {root} nor a data "
                        f"folder (one with a train.csv); images are only read from a data folder")
    return target


def read_frame(path: Path, columns: tuple[str, ...]):
    """``(frame of strings, None)``, or ``(None, (kind, detail))`` for a whole-file problem.

    Shared by :func:`read_csv` (which raises) and the data check (which collects findings).
    """
    if not path.is_file():
        return None, ("missing_csv", "file not found")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        return None, ("empty_csv", f"the file is empty (expected a header {','.join(columns)})")
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as err:
        return None, ("bad_csv", f"not a readable CSV file ({str(err).strip().splitlines()[0]})")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        return None, ("bad_header", f"missing column(s) {missing}; found {list(frame.columns)}")
    if frame.empty:
        return None, ("empty_csv", f"header {list(frame.columns)} but no data rows")
    return frame, None


def read_csv(path: Path, columns: tuple[str, ...], drop_rows=()) -> pd.DataFrame:
    frame, problem = read_frame(path, columns)
    if problem:
        raise DataError(f"{path}: {problem[1]}")
    frame = frame.drop(index=sorted(drop_rows))
    if frame.empty:
        raise DataError(f"{path}: every row was dropped as bad")
    for column in columns:
        blank = frame.index[frame[column].str.strip() == ""]
        if len(blank):
            raise DataError(f"{path} row {csv_line(blank[0])}: empty {column!r}")
    return frame


NAME_MAX = 255      # bytes in one file or folder name (ext4, xfs, btrfs, NTFS, APFS)


class NameTooLong(DataError):
    """A CSV image entry whose file or folder name no file system can hold."""


def image_path(root: Path, image: str, csv: Path, row: int, real_root: str | None = None) -> Path:
    """Join a CSV image entry to the data folder, refusing paths that escape it, also through
    a symbolic link (``images/x.jpg -> /elsewhere``): such a file is never opened.

    ``real_root`` is ``os.path.realpath(root)``, passed in by callers joining many rows.
    """
    rel = Path(image)
    longest = max((len(os.fsencode(part)) for part in rel.parts), default=0)
    if longest > NAME_MAX:
        raise NameTooLong(f"{csv} row {csv_line(row)}: image path {image[:40]!r}... has a name of "
                        f"{longest} bytes; file systems allow {NAME_MAX}")
    if rel.is_absolute() or ".." in rel.parts:
        raise DataError(f"{csv} row {csv_line(row)}: image path {image!r} escapes the data "
                        f"folder")
    path = root / rel
    real_root = real_root or os.path.realpath(root)
    target = os.path.realpath(path)
    if target != real_root and not target.startswith(real_root.rstrip(os.sep) + os.sep):
        raise DataError(f"{csv} row {csv_line(row)}: image path {image!r} escapes the data folder "
                        f"through a symbolic link")
    return path


def spaced_twins(labels) -> list[tuple[object, object]]:
    """``(first row, row)`` of each label equal to an earlier one but for the spaces around
    it ("acer " after "acer"), once per spelling: two classes to the model, one to the eye,
    so the data check and training both refuse them.  ``labels``: row -> label."""
    first_of: dict[str, tuple[str, object]] = {}
    spellings, pairs = set(), []
    for row, label in labels.items():
        seen, first = first_of.setdefault(label.strip(), (label, row))
        if seen != label and label not in spellings:
            spellings.add(label)
            pairs.append((first, row))
    return pairs


def encode_labels(labels: pd.Series, classes: list[str] | None = None) -> tuple[np.ndarray, list[str]]:
    """Class names -> ids; with no class list, the sorted unique names define it."""
    if classes is None:
        for first, row in spaced_twins(labels)[:1]:
            raise DataError(f"lines {csv_line(first)} and {csv_line(row)}: labels "
                            f"{labels[first]!r} and {labels[row]!r} differ only in spaces "
                            f"around them; write one name")
        classes = sorted(labels.unique().tolist())
    index = {name: i for i, name in enumerate(classes)}
    unknown = labels[~labels.isin(index)]
    if len(unknown):
        raise DataError(f"row {csv_line(unknown.index[0])}: label {unknown.iloc[0]!r} is not "
                        f"one of the {len(classes)} known classes")
    return labels.map(index).to_numpy(dtype=np.int64), classes


def split_indices(labels: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded stratified split; every class keeps at least one training image."""
    if not 0.0 <= val_fraction < 1.0:
        raise UsageError(f"val_fraction must be in [0, 1), got {val_fraction}")
    rng = np.random.default_rng(seed)
    train, val = [], []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        n_val = min(int(round(len(members) * val_fraction)), len(members) - 1)
        val.extend(members[:n_val])
        train.extend(members[n_val:])
    return np.sort(np.array(train, dtype=np.int64)), np.sort(np.array(val, dtype=np.int64))


def fold_indices(labels: np.ndarray, fold: int, folds: int, seed: int,
                 groups: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(train, val) row indices of stratified fold ``fold`` of ``folds`` (scikit-learn).

    ``groups`` (one id per row) keeps rows of a group in one fold (``StratifiedGroupKFold``);
    without any group of two or more rows the plain stratified folds are used, so data with
    no near-copies keeps the folds it always had.
    """
    if folds < 2 or not 0 <= fold < folds:
        raise UsageError(f"need folds >= 2 and 0 <= fold < folds, got fold={fold}, folds={folds}")
    smallest = int(np.unique(labels, return_counts=True)[1].min())
    if folds > smallest:
        # a class with fewer images than folds leaves some validation folds without it
        fix = f"use --folds {smallest} or fewer" if smallest >= 2 else \
            "k-fold needs two or more images in every class"
        raise UsageError(f"--folds {folds} is more than the {smallest} image(s) of the "
                         f"smallest class; {fix}")
    if groups is not None and len(np.unique(groups)) < len(groups):
        splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
        train, val = list(splitter.split(np.zeros(len(labels)), labels, groups))[fold]
    else:
        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
        train, val = list(splitter.split(np.zeros(len(labels)), labels))[fold]
    return np.sort(train), np.sort(val)


def split_rows(labels: np.ndarray, pseudo: np.ndarray, *, val_fraction: float, seed: int,
               fold: int | None, folds: int | None,
               groups: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(train, val) positions.  Pseudo-labelled rows only ever train, so validation scores
    real labels; the split of the other rows is the one they would have without them.  With
    ``groups``, no training row is a near-copy of a validation row."""
    real = np.flatnonzero(~pseudo)
    if folds:
        train, val = fold_indices(labels[real], fold or 0, folds, seed,
                                  None if groups is None else groups[real])
    else:
        train, val = split_indices(labels[real], val_fraction, seed)
    train, val = real[train], real[val]
    train = np.sort(np.concatenate([train, np.flatnonzero(pseudo)]))
    if groups is not None:
        train = train[~np.isin(groups[train], groups[val])]
    return train, val


def samples_from_frame(name: str, frame: pd.DataFrame, labels: np.ndarray, layout: Layout,
                       csv: Path) -> Samples:
    images = frame["image"].tolist()
    rows = frame.index.to_numpy(dtype=np.int64)        # CSV data rows, also after dropping some
    real_root = os.path.realpath(layout.image_root)
    paths = [image_path(layout.image_root, image, csv, row, real_root)
             for row, image in zip(rows, images)]
    return Samples(name, paths, labels, rows, csv, images)


def load_table(data_dir=None, *, val_fraction: float = 0.2, seed: int = 0, fold: int | None = None,
               folds: int | None = None, classes: list[str] | None = None,
               project_root: Path | None = None, drop_rows=(),
               group_near_duplicates: bool = TrainConfig.group_near_duplicates,
               relabel: dict | None = None) -> Table:
    """Read train.csv (and test.csv when present) into a :class:`Table`.

    Args:
        data_dir: Kaggle-layout folder, or None for the paper's ``references/`` + ``data/``.
        val_fraction: validation share of each class (ignored when ``folds`` is set).
        seed: seeds the split and the folds.
        fold, folds: use stratified fold ``fold`` of ``folds`` as the validation split.
        classes: a fixed class list (e.g. from a checkpoint); unknown labels are refused.
        drop_rows: 0-based train.csv data rows to leave out (``--skip-bad``).
        group_near_duplicates: with ``folds``, keep near-identical images (perceptual hash,
            :mod:`fastleaf.data.dedup`) in one fold; the config's default, as training has it.
        relabel: ``{train.csv row: label}`` replacing the CSV's labels (``--relabel``); the
            split is drawn with the new labels.
    """
    layout = resolve_layout(data_dir, project_root)
    frame = read_csv(layout.train_csv, ("image", "label"), drop_rows)
    for row, label in (relabel or {}).items():
        if row in frame.index:
            frame.at[row, "label"] = label
    try:
        labels, classes = encode_labels(frame["label"], classes)
    except DataError as err:
        raise DataError(f"{layout.train_csv} {err}") from None
    everything = samples_from_frame("all", frame, labels, layout, layout.train_csv)
    pseudo = (frame["source"].str.strip() == PSEUDO).to_numpy() if "source" in frame.columns \
        else np.zeros(len(frame), dtype=bool)
    groups = None
    if folds and group_near_duplicates:
        from .dedup import near_duplicate_groups

        groups = near_duplicate_groups(everything.paths)
    # rows a folder layout's val/ holds validate instead of a random split (folds mix them in)
    fixed = (frame["split"].str.strip() == "val").to_numpy() if "split" in frame.columns \
        else np.zeros(len(frame), dtype=bool)
    if fixed.any() and not folds:
        train_idx, val_idx = np.flatnonzero(~fixed), np.flatnonzero(fixed)
    else:
        train_idx, val_idx = split_rows(labels, pseudo, val_fraction=val_fraction, seed=seed,
                                        fold=fold, folds=folds, groups=groups)
    test = None
    if layout.test_csv.is_file():
        test_frame = read_csv(layout.test_csv, ("image",))
        test = samples_from_frame("test", test_frame,
                                  np.full(len(test_frame), UNLABELLED, dtype=np.int64),
                                  layout, layout.test_csv)
    return Table(layout, classes, everything.subset(train_idx, "train"),
                 everything.subset(val_idx, "val"), test, everything, everything.rows[pseudo])


def data_files(data_dir) -> list[Path]:
    """Every file the data set consists of: the CSVs, the class list and each image named in
    them (outputs must never be one of these)."""
    layout = resolve_layout(data_dir)
    files = [layout.train_csv, layout.test_csv, layout.image_root / "classes.json",
             *layout.sources]
    for csv in (layout.train_csv, layout.test_csv):
        frame, _ = read_frame(csv, ("image",))
        if frame is not None:
            files += [layout.image_root / image.strip() for image in frame["image"]
                      if image.strip()]
    return files


def data_fingerprint(data_dir) -> dict | None:
    """What identifies the labelled rows a run learnt from and validated on: train.csv's
    SHA-256 and its row count (recorded in every checkpoint, compared before re-splitting);
    None when there is no readable train.csv."""
    try:
        csv = resolve_layout(data_dir).train_csv
        stat = csv.stat()
        return dict(_fingerprint(str(csv), stat.st_mtime_ns, stat.st_size))
    except (OSError, FastleafError):
        return None


@functools.lru_cache(maxsize=8)
def _fingerprint(csv: str, _mtime_ns: int, _size: int) -> tuple:
    # keyed by the file's time and size: every checkpoint of a run hashes it once
    import hashlib

    raw = Path(csv).read_bytes()
    rows = len(read_csv(Path(csv), ("image", "label")))
    return (("train_csv_sha256", hashlib.sha256(raw).hexdigest()), ("rows", rows))


def check_fingerprint(recorded: dict | None, data_dir, what: str) -> None:
    """Refuse a data folder whose train.csv is not the one ``what`` recorded: its split would
    hold other images, and every score on it would be wrong."""
    if not recorded:          # checkpoints written before fingerprints were kept
        return
    found = data_fingerprint(data_dir)
    if found is None:           # no train.csv there: loading the table says so
        return
    if found["train_csv_sha256"] != recorded.get("train_csv_sha256"):
        csv = resolve_layout(data_dir).train_csv
        raise DataError(f"{csv} ({found['rows']} rows) is not the train.csv {what} was "
                        f"trained on ({recorded.get('rows')} rows, another content); pass "
                        f"--data with the run's own data folder, or score a labelled --csv")


def save_classes(classes: list[str], path: Path) -> None:
    from ..utils.atomic import write_text_atomic

    write_text_atomic(path, json.dumps(classes, indent=0) + "\n")


def load_classes(path: Path) -> list[str]:
    """A JSON list of distinct, non-empty class names; anything else is named as broken."""
    path = Path(path)
    try:
        classes = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(f"{path}: not a readable JSON class list ({err})") from None
    if not isinstance(classes, list) or not classes:
        raise DataError(f"{path}: expected a non-empty JSON list of class names, "
                        f"got {type(classes).__name__}")
    bad = [c for c in classes if not isinstance(c, str) or not c.strip()]
    if bad:
        raise DataError(f"{path}: class names must be non-empty strings; found {bad[0]!r}")
    if len(set(classes)) != len(classes):
        twice = next(c for c in classes if classes.count(c) > 1)
        raise DataError(f"{path}: class {twice!r} is listed twice")
    return classes
