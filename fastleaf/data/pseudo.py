"""Pseudo-labels: confident test predictions become training rows of a new data folder.

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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from ..errors import OutputExistsError, UsageError
from ..utils.atomic import atomic_path, write_text_atomic, writing
from ..utils.paths import output_file
from .table import POINTER, PSEUDO, DataError, read_csv, resolve_layout


@dataclass
class PseudoResult:
    out_dir: Path
    added: int             # test rows that became training rows
    test_rows: int
    train_rows: int        # original training rows
    per_class: dict[str, int]


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


def pseudo_label(data_dir, out_dir, *, checkpoints=(), blend=None, threshold: float = 0.9,
                 settings=None) -> PseudoResult:
    """Predict test.csv and write a data folder whose train.csv adds the confident rows.

    Args:
        data_dir: the Kaggle-layout folder (train.csv, test.csv, images).
        out_dir: the new folder (must not hold a train.csv yet).
        checkpoints: ``best.pt`` files, run folders or k-fold folders (an equal ensemble).
        blend: a ``blend.json`` instead of ``checkpoints``.
        threshold: the lowest ensemble probability of the predicted class that is kept.
        settings: TTA, device, precision (``PredictSettings``).
    """
    from ..predict.ensemble import PredictSettings, ensemble_probs, load_members
    from ..predict.runner import read_test_samples

    if not 0.0 <= threshold <= 1.0:
        raise UsageError(f"--threshold must be in [0, 1], got {threshold}")
    settings = settings or PredictSettings()
    layout = resolve_layout(data_dir)
    train = read_csv(layout.train_csv, ("image", "label"))
    samples = read_test_samples(data_dir)
    check_pseudo_folder(data_dir, out_dir)
    if blend is not None:
        from ..predict.blend import blend_ensemble

        members, output = blend_ensemble(blend, samples, settings)
    elif checkpoints:
        members = load_members(checkpoints)
        output = ensemble_probs(members, samples, settings)[settings.tta]
    else:
        raise UsageError("name the models: --checkpoint PATH (repeatable) or --blend FILE")
    classes = members[0].classes
    unknown = sorted(set(train["label"]) - set(classes))
    if unknown:
        raise DataError(f"{layout.train_csv}: label {unknown[0]!r} is not one of the models' "
                        f"{len(classes)} classes")
    frame, added = pseudo_frame(train, samples.images, output.probs.numpy(), classes, threshold)
    write_pseudo_folder(data_dir, out_dir, frame)
    new = frame[frame["source"] == PSEUDO].tail(added)
    return PseudoResult(Path(out_dir), added, len(samples), len(train),
                        new["label"].value_counts().to_dict())
