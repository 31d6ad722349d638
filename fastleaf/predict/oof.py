"""Out-of-fold predictions of a k-fold run: every training row predicted by the fold model
that never saw it.

    fastleaf train --data DIR --folds 5 --out runs/k5
    # -> runs/k5/oof.csv        image,label,pred,fold,confidence (train.csv order)
    #    runs/k5/oof_probs.npy  (rows of oof.csv, classes) float32, class order classes.json
    #    runs/k5/classes.json

``oof_probs.npy`` has the layout of ``tta-predict --save-probs test.npy`` (rows in CSV order,
columns in class-list order, float32), so a stacker reads both alike.  Pseudo-labelled rows
(``source`` = pseudo) only ever train, so they have no out-of-fold prediction.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..data.table import DataError, csv_line, save_classes
from ..train.metrics import classification_metrics
from ..utils.atomic import atomic_path
from .ensemble import PredictSettings, ensemble_probs, load_members
from .submission import write_probs

OOF_CSV = "oof.csv"
OOF_PROBS = "oof_probs.npy"
OOF_COLUMNS = ("image", "label", "pred", "fold", "confidence")


@dataclass
class OutOfFold:
    frame: pd.DataFrame          # OOF_COLUMNS, one row per training row, train.csv order
    probs: np.ndarray            # (rows, classes) float32
    labels: np.ndarray           # (rows,) class ids
    classes: list[str]
    metrics: dict[str, float]    # acc, f1_macro, kappa, sum over every row


def fold_settings(cfg) -> PredictSettings:
    """Each fold's own precision, layout and batch size: the predictions are the ones its
    validation scored."""
    return PredictSettings(tta="none", batch_size=None, amp=None, amp_dtype=None,
                           channels_last=None, device=cfg.device, workers=cfg.workers)


def predict_out_of_fold(cfg, fold_dirs: list[Path]) -> OutOfFold:
    """Predict each fold's validation rows with its ``best.pt``; pool them in train.csv order.

    Args:
        cfg: the k-fold config (device and loader workers; each fold's split is its run's
            own, :meth:`fastleaf.predict.run_folder.SavedRun.table`).
        fold_dirs: ``fold0 .. fold{K-1}`` run folders, in fold order.
    """
    members = [load_members([d / "best.pt"])[0] for d in fold_dirs]
    classes = members[0].classes
    position, probs, fold_of = None, None, None
    for k, (member, run_dir) in enumerate(zip(members, fold_dirs)):
        if member.classes != classes:
            raise DataError(f"{run_dir}: trained on another class list than fold 0")
        table = member.run.table()
        if position is None:
            everything = table.all_train
            position = {int(r): i for i, r in enumerate(everything.rows)}
            probs = np.full((len(everything), len(classes)), np.nan, dtype=np.float32)
            fold_of = np.full(len(everything), -1, dtype=np.int64)
        at = np.array([position[int(r)] for r in table.val.rows], dtype=np.int64)
        if (fold_of[at] >= 0).any():
            raise DataError(f"{run_dir}: its validation rows overlap an earlier fold's")
        out = ensemble_probs([member], table.val, fold_settings(cfg))["none"]
        probs[at], fold_of[at] = out.probs.numpy(), k
    keep = np.isin(everything.rows, table.pseudo_rows, invert=True)
    if (fold_of[keep] < 0).any():
        line = csv_line(everything.rows[keep][fold_of[keep] < 0][0])
        raise DataError(f"{everything.csv} line {line}: no fold validated this row")
    return pool(everything.subset(np.flatnonzero(keep)), probs[keep], fold_of[keep], classes)


def pool(samples, probs: np.ndarray, folds: np.ndarray, classes: list[str]) -> OutOfFold:
    """The out-of-fold table and CV metrics over every row."""
    predicted = probs.argmax(1)
    frame = pd.DataFrame({"image": samples.images,
                          "label": [classes[i] for i in samples.labels],
                          "pred": [classes[i] for i in predicted], "fold": folds,
                          "confidence": probs.max(1)}, columns=list(OOF_COLUMNS))
    metrics = classification_metrics(samples.labels, predicted)
    return OutOfFold(frame, probs, np.asarray(samples.labels), list(classes), metrics)


def write_out_of_fold(out_dir: str | Path, oof: OutOfFold) -> tuple[Path, Path]:
    """``oof.csv``, ``oof_probs.npy`` and ``classes.json`` into the k-fold folder (atomic)."""
    out_dir = Path(out_dir)
    with atomic_path(out_dir / OOF_CSV) as tmp:
        oof.frame.to_csv(tmp, index=False, float_format="%.6g")
    probs = write_probs(out_dir / OOF_PROBS, oof.frame["image"].tolist(), oof.probs, oof.classes)
    save_classes(oof.classes, out_dir / "classes.json")
    return out_dir / OOF_CSV, probs


def read_out_of_fold(run_dir: str | Path) -> OutOfFold:
    """Load what :func:`write_out_of_fold` wrote; the message says what is missing or off."""
    from ..data.table import load_classes

    run_dir = Path(run_dir)
    paths = [run_dir / OOF_CSV, run_dir / OOF_PROBS, run_dir / "classes.json"]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise DataError(f"{run_dir}: no {', '.join(missing)}; it must be a k-fold run "
                        f"(fastleaf train --folds K) that finished every fold")
    frame = pd.read_csv(paths[0], dtype={"image": str, "label": str, "pred": str},
                        keep_default_na=False)
    probs = np.load(paths[1], allow_pickle=False)
    classes = load_classes(paths[2])
    if probs.shape != (len(frame), len(classes)):
        raise DataError(f"{paths[1]}: shape {probs.shape}, but {OOF_CSV} has {len(frame)} rows "
                        f"and classes.json {len(classes)} classes")
    index = {name: i for i, name in enumerate(classes)}
    labels = frame["label"].map(index)
    if labels.isna().any():
        bad = int(np.flatnonzero(labels.isna().to_numpy())[0])
        raise DataError(f"{paths[0]} line {csv_line(bad)}: label {frame['label'].iloc[bad]!r} is "
                        f"not in classes.json")
    labels = labels.to_numpy(dtype=np.int64)
    metrics = classification_metrics(labels, probs.argmax(1))
    return OutOfFold(frame, probs.astype(np.float32), labels, classes, metrics)
