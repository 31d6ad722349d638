"""Kaggle submission files and test predictions: checked, then written atomically.

A submission is ``image,label``, one row per ``test.csv`` row in the same order, every label a
training class.  The file is written to a temp file, read back and checked, and only then
renamed into place, so a failed check leaves no file (and never half of one).  The test rows
of a folder-per-class tree or of any CSV are written the same way as ``image,label,probability``
(the predicted class and its probability): :func:`write_predictions` picks by layout.

    test = read_test_samples("data/classify-leaves")     # test.csv rows, in file order
    write_submission("submission.csv", test.images, predicted_names, classes)
    write_predictions("predictions.csv", data, test.images, probs, classes)

Free of torch: exported models (``fastleaf.export.onnx_runtime``) write submissions here too.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from ..data.table import (UNLABELLED, DataError, Samples, csv_line, read_csv, resolve_layout,
                          samples_from_frame)
from ..errors import FastleafError, UsageError
from ..utils.atomic import atomic_path

HEADER = ("image", "label")
PREDICTIONS = ("image", "label", "probability")      # folder trees and any CSV


class SubmissionError(FastleafError, ValueError):
    """The submission would not be valid; the message names the file and the row."""


def check_submission(frame: pd.DataFrame, expected_images: Sequence[str],
                     classes: Sequence[str], source: str | Path, header=HEADER) -> None:
    """Raise :class:`SubmissionError` unless ``frame`` is a valid submission.

    Args:
        frame: the submission table (strings).
        expected_images: test.csv's ``image`` column, in order.
        classes: the training classes.
        source: the file named in error messages.
        header: the columns, in order (:data:`HEADER`, or :data:`PREDICTIONS`).
    """
    if tuple(frame.columns) != tuple(header):
        raise SubmissionError(f"{source}: header must be exactly {','.join(header)}, "
                              f"got {','.join(map(str, frame.columns))}")
    if len(frame) != len(expected_images):
        raise SubmissionError(f"{source}: {len(frame)} rows, but test.csv has "
                              f"{len(expected_images)}")
    images = frame["image"].astype(str).to_numpy()
    wrong = np.flatnonzero(images != np.asarray(expected_images, dtype=str))
    if len(wrong):
        i = int(wrong[0])
        raise SubmissionError(f"{source} row {csv_line(i)}: image {images[i]!r} where test.csv has "
                              f"{expected_images[i]!r} (rows must follow test.csv order)")
    known = set(classes)
    bad = [i for i, label in enumerate(frame["label"].astype(str)) if label not in known]
    if bad:
        i = bad[0]
        raise SubmissionError(f"{source} row {csv_line(i)}: label {frame['label'].iloc[i]!r} "
                              f"is not one of the {len(known)} training classes")


def write_submission(path: str | Path, images: Sequence[str], labels: Sequence[str],
                     classes: Sequence[str]) -> Path:
    """Check and atomically write ``image,label`` rows; returns the path written."""
    frame = pd.DataFrame({"image": list(images), "label": list(labels)}, columns=list(HEADER))
    return write_checked(Path(path), frame, images, classes)


def write_checked(path: Path, frame: pd.DataFrame, images: Sequence[str],
                  classes: Sequence[str]) -> Path:
    header = tuple(frame.columns)
    check_submission(frame, images, classes, path, header)
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)
        # read the bytes back as Kaggle will: catches quoting or encoding surprises
        written = pd.read_csv(tmp, dtype=str, keep_default_na=False)
        check_submission(written, images, classes, path, header)
    return path


def write_predictions(path: str | Path, data_dir, images: Sequence[str], probs,
                      classes: Sequence[str]) -> tuple[Path, tuple[str, ...]]:
    """The test rows' predictions, checked and written atomically: Kaggle's submission
    (``image,label``) for the Kaggle layout, ``image,label,probability`` for a folder-per-class
    tree or any CSV; returns the path and the columns written."""
    from ..data.csv_source import layout_kind

    probs = np.asarray(probs, dtype=np.float64)
    best = probs.argmax(-1)
    labels = [classes[i] for i in best]
    if layout_kind(data_dir) == "kaggle":
        return write_submission(path, images, labels, classes), HEADER
    frame = pd.DataFrame({"image": list(images), "label": labels,
                          "probability": [f"{p:.6f}" for p in probs[np.arange(len(best)), best]]},
                         columns=list(PREDICTIONS))
    return write_checked(Path(path), frame, images, classes), PREDICTIONS


def probs_format(path: str | Path) -> str:
    """``.npy`` or ``.csv``: checked before any model runs, so a typo costs no prediction."""
    suffix = Path(path).suffix.lower()
    if suffix not in (".npy", ".csv"):
        raise UsageError(f"--save-probs {path}: use a .npy or .csv file name")
    return suffix


def write_probs(path: str | Path, images: Sequence[str], probs: np.ndarray,
                classes: Sequence[str]) -> Path:
    """Save ``(N, classes)`` probabilities for stacking: ``.npy`` (array) or ``.csv``.

    The CSV has an ``image`` column then one column per class; the ``.npy`` holds the array in
    test.csv row order and class-list order.
    """
    path = Path(path)
    probs = np.asarray(probs, dtype=np.float32)
    if probs.shape != (len(images), len(classes)):
        raise ValueError(f"probabilities of shape {probs.shape} for {len(images)} images and "
                         f"{len(classes)} classes")
    suffix = probs_format(path)
    with atomic_path(path) as tmp:
        if suffix == ".npy":
            with open(tmp, "wb") as f:       # a file object: np.save would append ".npy"
                np.save(f, probs)
        else:
            buf = io.StringIO()
            frame = pd.DataFrame(probs, columns=list(classes))
            frame.insert(0, "image", list(images))
            frame.to_csv(buf, index=False, float_format="%.6g")
            tmp.write_text(buf.getvalue())
    return path


def read_test_samples(data_dir=None) -> Samples:
    """test.csv rows in file order (layout as in ``load_table``; train.csv is not needed)."""
    from ..data.csv_source import no_test_images

    layout = resolve_layout(data_dir)
    missing = None if layout.test_csv.is_file() else no_test_images(data_dir)
    if missing:
        raise DataError(missing)
    frame = read_csv(layout.test_csv, ("image",))
    labels = np.full(len(frame), UNLABELLED, dtype=np.int64)
    return samples_from_frame("test", frame, labels, layout, layout.test_csv)


def require_images(samples: Samples) -> None:
    """Each test image must exist: a missing one is named with its test.csv line up front."""
    for path, row, image in zip(samples.paths, samples.rows, samples.images):
        if not path.is_file():
            raise DataError(f"{samples.csv} line {csv_line(row)} ({image!r}): image file not "
                            f"found: {path}")
