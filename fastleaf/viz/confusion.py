"""Which classes a run confuses: its best checkpoint re-run over its own validation split.

The split is rebuilt from the run's config (data, val_fraction, seed, fold, folds, near-duplicate
grouping, rows left out), so these are the very images the run was scored on.
"""
from __future__ import annotations

import numpy as np
from sklearn.metrics import confusion_matrix

from ..data.table import Table
from ..predict.ensemble import Member, PredictSettings, ensemble_probs
from ..predict.run_folder import open_run
from ..predict.run_folder import run_table as table_of_run
from .runs import Run


def run_table(run: Run) -> Table:
    """The data table of a run folder's ``config.yaml``, with its split and class list."""
    return table_of_run(run.config, run.recorded, run.classes or None, run.path)


def validation_predictions(run: Run, device: str = "auto", workers: int = 0,
                           data_dir=None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(true ids, predicted ids, class names) of ``run``'s best.pt over its validation split.

    The model, its normalisation, batch size, layout and precision are the checkpoint's own,
    so the predictions are the ones its metrics came from; ``data_dir`` replaces the data
    folder it recorded.
    """
    saved = open_run(run.path)
    settings = PredictSettings(tta="none", batch_size=None, device=device, amp=None,
                               amp_dtype=None, channels_last=None, loader="workers",
                               workers=workers)
    out = ensemble_probs([Member(saved)], saved.table(data_dir).val, settings)["none"]
    return out.labels.numpy(), out.probs.argmax(-1).numpy(), saved.classes


def confusion(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """(classes, classes) counts: row = true class, column = predicted class."""
    return confusion_matrix(y_true, y_pred, labels=np.arange(num_classes))


def confused_pairs(cm: np.ndarray, classes: list[str], top: int = 10) -> list[dict]:
    """The ``top`` largest off-diagonal cells: (true, predicted, count, share of the true class)."""
    off = cm.copy()
    np.fill_diagonal(off, 0)
    flat = np.argsort(off, axis=None, kind="stable")[::-1][:top]
    pairs = []
    for true, pred in zip(*np.unravel_index(flat, off.shape)):
        if off[true, pred] == 0:
            break
        pairs.append({"true": classes[true], "pred": classes[pred], "count": int(off[true, pred]),
                      "share": float(off[true, pred] / max(cm[true].sum(), 1))})
    return pairs


def worst_classes(cm: np.ndarray, classes: list[str], n: int = 15) -> list[dict]:
    """The ``n`` classes with the lowest validation accuracy (more images first among ties)."""
    support = cm.sum(1)
    correct = np.diag(cm)
    present = np.flatnonzero(support > 0)
    acc = correct[present] / support[present]
    order = present[np.lexsort((-support[present], acc))][:n]
    return [{"class": classes[i], "support": int(support[i]), "correct": int(correct[i]),
             "acc": float(correct[i] / support[i])} for i in order]
