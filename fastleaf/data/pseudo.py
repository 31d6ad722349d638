"""Pseudo-labelled data folders: confident test predictions become training rows of a new
data folder (the predicting is :func:`fastleaf.predict.pseudo.pseudo_label`'s; this module
writes the folder, as it does for the study's per-class subsets).

    fastleaf pseudo-label --checkpoint runs/k5 --data DIR --threshold 0.9 --out DIR-pseudo
    fastleaf train --data DIR-pseudo --folds 5 ...

``DIR-pseudo`` holds CSVs and no images:

* ``train.csv``: every original row (``source`` = train) then the confident test rows
  (``source`` = pseudo, with the ``confidence`` that admitted them);
* ``test.csv``: the original, so ``tta-predict --data DIR-pseudo`` predicts the same rows;
* ``data.yaml``: ``image_root: <the original folder>``.  Image paths stay relative to the
  original folder and are checked against it exactly as there (no ``..``, no absolute paths):
  nothing is copied or linked, and a rule that refuses links out of a data folder has none
  to refuse.

Pseudo rows only ever train (:func:`fastleaf.data.table.split_rows`): validation and
out-of-fold scores stay on real labels.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from ..errors import OutputExistsError, UsageError
from ..utils.atomic import atomic_path, write_text_atomic, writing
from ..utils.paths import output_file
from .table import POINTER, PSEUDO, resolve_layout


def pseudo_frame(train: pd.DataFrame, test_images, probs: np.ndarray, classes,
                 threshold: float) -> tuple[pd.DataFrame, int]:
    """The new train.csv table and how many test rows it gained.

    Test images already listed in train.csv (an earlier round's pseudo rows, or copies) are
    not added twice.
    """
    train = train.copy()
    if "source" not in train.columns:
        train["source"] = "train"
    if "confidence" not in train.columns:
        train["confidence"] = ""
    confidence = probs.max(1)
    predicted = probs.argmax(1)
    known = set(train["image"])
    take = [i for i, image in enumerate(test_images)
            if confidence[i] >= threshold and image not in known]
    added = pd.DataFrame({"image": [test_images[i] for i in take],
                          "label": [classes[predicted[i]] for i in take],
                          "source": PSEUDO,
                          "confidence": [f"{confidence[i]:.6f}" for i in take]}, dtype=str)
    return pd.concat([train, added], ignore_index=True), len(take)


WRITTEN = ("train.csv", "test.csv", "sample_submission.csv", "classes.json", POINTER)


def check_pseudo_folder(data_dir, out_dir) -> Path:
    """Before any prediction: the new folder must be new, writable, and replace nothing."""
    out_dir = Path(out_dir)
    if out_dir.resolve() == Path(data_dir or ".").resolve():
        raise UsageError(f"--out {out_dir} is the data folder itself; choose a new folder")
    if (out_dir / "train.csv").exists():
        raise OutputExistsError(f"{out_dir / 'train.csv'} exists; choose a new --out folder")
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputExistsError(f"--out {out_dir}: is a file, not a folder")
    for name in WRITTEN:
        output_file(out_dir / name, "--out")
    return out_dir


def write_pseudo_folder(data_dir, out_dir, frame: pd.DataFrame) -> Path:
    """train.csv, a copy of test.csv and the ``data.yaml`` image-root pointer."""
    layout = resolve_layout(data_dir)
    out_dir = check_pseudo_folder(data_dir, out_dir)
    with writing(out_dir):
        out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / "test.csv") as tmp:
        shutil.copyfile(layout.test_csv, tmp)
    for extra in ("sample_submission.csv", "classes.json"):
        if data_dir is not None and (Path(data_dir) / extra).is_file():
            with atomic_path(out_dir / extra) as tmp:
                shutil.copyfile(Path(data_dir) / extra, tmp)
    write_text_atomic(out_dir / POINTER, yaml.safe_dump(
        {"image_root": str(layout.image_root.resolve())}, sort_keys=False))
    # train.csv last: a folder is only usable once everything it needs is there
    with atomic_path(out_dir / "train.csv") as tmp:
        frame.to_csv(tmp, index=False)
    return out_dir
