"""Which classes a run confuses: its best checkpoint re-run over its own validation split.

The split is rebuilt from the run's ``config.yaml`` (data, val_fraction, seed, fold, folds), so
these are the very images the run was scored on.
"""
from __future__ import annotations

import numpy as np
import torch
from sklearn.metrics import confusion_matrix

from ..config import TrainConfig
from ..data.table import Table, load_table
from ..loaders import LoaderOptions, create_loader
from ..models.data_config import data_config_of, eval_spec
from ..train.checkpoint import load_checkpoint, model_from_checkpoint
from ..train.loop import predict_logits
from ..train.precision import create_precision
from ..utils.console import tracked
from ..utils.device import resolve_device
from .runs import Run


def run_table(run: Run, classes: list[str] | None = None) -> Table:
    """The run's data table with its own split (and class list, when given)."""
    cfg = TrainConfig.from_dict(run.config, str(run.path / "config.yaml"))
    return load_table(cfg.data, val_fraction=cfg.val_fraction, seed=cfg.seed, fold=cfg.fold,
                      folds=cfg.folds, classes=classes or run.classes or None)


def validation_predictions(run: Run, device: str = "auto",
                           workers: int = 0) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(true ids, predicted ids, class names) of ``run``'s best.pt over its validation split."""
    state = load_checkpoint(run.path / "best.pt")
    cfg = TrainConfig.from_dict(state["config"], str(run.path / "best.pt"))
    table = run_table(run, list(state["classes"]))
    dev = resolve_device(device)
    model = model_from_checkpoint(state).to(dev)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    options = LoaderOptions(batch_size=cfg.batch_size, device=dev,
                            channels_last=bool(cfg.channels_last), workers=workers, seed=cfg.seed)
    loader = create_loader(table.val, eval_spec(data_config_of(cfg.to_dict())), options,
                           "torchvision")
    # the run's own precision, so the predictions are the ones its metrics came from
    precision = create_precision(bool(cfg.amp), dev, cfg.amp_dtype)
    batches = tracked(loader, f"{run.path.name}: validation predictions")
    logits, labels, _ = predict_logits(model, batches, precision)
    return labels.numpy(), logits.argmax(-1).numpy(), list(state["classes"])


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
