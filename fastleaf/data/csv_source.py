"""Any CSV as a data set: ``--csv FILE --image-col NAME --label-col NAME [--images-root DIR]``.

    source = CsvSource.create("labels.csv", image_col="file", label_col="species")
    table = load_table(source)       # every function that takes a data folder takes a source

The CSV's image and label columns are indexed into a Kaggle-layout view, kept outside the data
as the folder layout's index is (:mod:`fastleaf.data.folders`, ``$FASTLEAF_CACHE``):
``train.csv`` holds the labelled rows as ``image,label,line`` and ``test.csv`` the test rows as
``image,line`` (``line``: the row's line in the user's file).  The data check (escapes, bombs,
near-duplicates), k-fold, out-of-fold predictions, evaluation and prediction then read the view
as they read Kaggle's files.

* Image paths are relative to ``images_root`` (default: the CSV's folder) and must stay inside
  it (the data folder's escape rule, :func:`fastleaf.data.table.image_path`).
* Labels are any text (``3``, ``Acer rubrum``, ``"a,b"``); classes are the sorted label texts.
* The test rows are ``test_csv``'s (its image column has the same name) when given, else the
  CSV's rows whose label is empty; with ``test_csv`` an empty label is an error naming the row.
* A missing column is one line naming the file, the column and the columns it has.

A run records its source in config.yaml (``data: {csv: ..., image_col: ..., label_col: ...,
images_root: ..., test_csv: ...}``), so resume, evaluate and tta-predict find the CSV again.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import asdict
from pathlib import Path

from ..errors import MissingFileError
from ..sources import CsvSource, source_from_value
from .layout import DataError, Layout, csv_line
from .folders import csv_text, layouts_dir, write_if_changed

REPORTED: set = set()            # sources whose layout line was already printed
INDEXED: dict = {}               # (source, file stamps) -> Layout, so a command reads each once


def read_columns(path: Path, columns: dict[str, str]):
    """The CSV at ``path`` as text, with ``columns`` (name -> flag) checked to be there."""
    import pandas as pd

    if not path.is_file():
        raise MissingFileError(f"{path}: file not found")
    try:
        # utf-8-sig: a spreadsheet's byte-order mark is not part of the first column's name
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty (expected a header row)") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as err:
        first = str(err).strip().splitlines()[0]
        raise DataError(f"{path}: not a readable CSV file ({first})") from None
    missing = [f"{name!r} ({flag})" for name, flag in columns.items()
               if name not in frame.columns]
    if missing:
        raise DataError(f"{path}: no column {', '.join(missing)}; its columns are "
                        f"{', '.join(map(repr, frame.columns))}")
    return frame


def labelled_frame(path: Path, image_col: str = "image", label_col: str = "label"):
    """Every row of the CSV at ``path`` as ``image,label`` (a row without either is an error
    naming it), indexed by data row as the file has them."""
    import pandas as pd

    frame = read_columns(path, {image_col: "--image-col", label_col: "--label-col"})
    if frame.empty:
        raise DataError(f"{path}: a header but no data rows")
    for column in (image_col, label_col):
        check_filled(frame, column, path)
    return pd.DataFrame({"image": frame[image_col], "label": frame[label_col]},
                        index=frame.index)


def empty_cells(frame, column: str):
    return frame.index[frame[column].str.strip() == ""]


def check_filled(frame, column: str, path, why: str = "") -> None:
    """A row whose ``column`` is empty is an error naming ``path``, the row and ``why``."""
    blank = empty_cells(frame, column)
    if len(blank):
        raise DataError(f"{path} row {csv_line(blank[0])}: empty {column!r}{why}")


def split_rows(source: CsvSource) -> tuple[list, list]:
    """``(train rows, test rows)`` of the view: ``[image, label, line]`` and ``[image, line]``."""
    csv = Path(source.csv)
    frame = read_columns(csv, {source.image_col: "--image-col", source.label_col: "--label-col"})
    check_filled(frame, source.image_col, csv)
    if source.test_csv:
        check_filled(frame, source.label_col, csv, " (the test rows are --test-csv's; every "
                                                    "row here needs a label)")
    unlabelled = frame.index.isin(empty_cells(frame, source.label_col))
    if unlabelled.all():
        raise DataError(f"{csv}: no row has a label in column {source.label_col!r}")
    images, labels = frame[source.image_col], frame[source.label_col]
    train = [[images[i], labels[i], csv_line(i)] for i in frame.index[~unlabelled]]
    test = [[images[i], csv_line(i)] for i in frame.index[unlabelled]]
    if source.test_csv:
        tests = read_columns(Path(source.test_csv), {source.image_col: "--image-col"})
        check_filled(tests, source.image_col, source.test_csv)
        test = [[tests[source.image_col][i], csv_line(i)] for i in tests.index]
    return train, test


def view_dir(source: CsvSource) -> Path:
    key = hashlib.sha256(repr(sorted(asdict(source).items())).encode()).hexdigest()[:16]
    return layouts_dir() / f"{Path(source.csv).stem}-csv-{key}"


def stamp(path: str | None) -> tuple | None:
    if path is None:
        return None
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_mtime_ns, info.st_size


def csv_layout(source: CsvSource):
    """Index ``source`` (once per content) and return the :class:`Layout` of its view."""
    root = source.root
    if not Path(source.csv).is_file():
        raise MissingFileError(f"--csv {source.csv}: file not found")
    if not root.is_dir():
        raise MissingFileError(f"--images-root {root}: not a folder (the image paths of "
                               f"{source.csv} are relative to it)")
    key = (source, stamp(source.csv), stamp(source.test_csv))
    view = view_dir(source)
    train_csv, test_csv = view / "train.csv", view / "test.csv"
    if key not in INDEXED or not train_csv.is_file():
        train, test = split_rows(source)
        view.mkdir(parents=True, exist_ok=True)
        write_if_changed(train_csv, csv_text(["image", "label", "line"], train))
        if test:
            write_if_changed(test_csv, csv_text(["image", "line"], test))
        else:
            test_csv.unlink(missing_ok=True)
        report(source, train, test, view)
        sources = tuple(Path(p) for p in (source.csv, source.test_csv) if p)
        INDEXED[key] = Layout(train_csv, test_csv, root, sources)
    return INDEXED[key]


def report(source: CsvSource, train: list, test: list, view: Path) -> None:
    """Say once per process which layout was read: columns, rows, classes, the test rows."""
    if source in REPORTED:
        return
    REPORTED.add(source)
    from ..utils.console import console

    classes = len({label for _, label, _ in train})
    where = (f"{len(test)} test rows ({source.test_csv})" if source.test_csv else
             f"{len(test)} rows without a label as the test set" if test else "no test rows")
    console.print(f"data: {source.csv} read as a CSV (images {source.image_col!r} under "
                  f"{source.root}, labels {source.label_col!r}): {len(train)} labelled rows "
                  f"of {classes} classes, {where}; index {view}", soft_wrap=True, markup=False)


def csv_of(data_dir) -> CsvSource | None:
    """The :class:`CsvSource` a data argument describes (a source or a config's mapping), or
    None for a data folder."""
    return source_from_value(data_dir, "data") if isinstance(data_dir, (CsvSource, dict)) \
        else None


def view_layout(data_dir):
    """The layout of a data set read through a view (any CSV, a folder-per-class tree), or
    None for a Kaggle-layout folder.  A folder that does not exist is a one-line error."""
    from .folders import index_tree, is_folder_layout

    source = csv_of(data_dir)
    if source is not None:
        return csv_layout(source)
    root = Path(data_dir)
    if root.is_file() and root.suffix.lower() in (".csv", ".tsv", ".txt"):
        raise DataError(f"--data {root}: a file; a CSV is read with --csv FILE --image-col "
                        f"NAME --label-col NAME [--images-root DIR]")
    if not root.is_dir():
        raise DataError(f"data folder not found: {root}")
    if is_folder_layout(root):
        # folder-per-class data: an index of the tree stands in for the CSVs
        train_csv, test_csv = index_tree(root)
        return Layout(train_csv, test_csv, root)
    return None


def layout_kind(data_dir) -> str:
    """``csv``, ``folders`` or ``kaggle`` (also the repository's references/ layout)."""
    from .folders import is_folder_layout

    if csv_of(data_dir) is not None:
        return "csv"
    return "folders" if data_dir is not None and is_folder_layout(Path(data_dir)) else "kaggle"


def no_test_images(data_dir) -> str | None:
    """Why a folder tree or a CSV has no test rows, with what to do; None for Kaggle's."""
    source = csv_of(data_dir)
    if source is not None:
        return (f"{source.csv}: no test images; give --test-csv FILE, or leave the "
                f"{source.label_col!r} of the rows to predict empty")
    if layout_kind(data_dir) == "folders":
        return (f"{data_dir}: no test images; they go in a test/ folder beside train/ "
                f"({Path(data_dir) / 'test'}/ next to {Path(data_dir) / 'train'}/<class>/)")
    return None


def data_folder(data_dir) -> Path | None:
    """The folder a data set's own files (``classes.json``) sit in: a CSV's images folder."""
    if data_dir is None:
        return None
    source = csv_of(data_dir)
    if source is not None:
        return source.root
    return Path(data_dir)
