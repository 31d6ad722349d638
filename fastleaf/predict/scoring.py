"""``evaluate_checkpoints``: validation metrics without and with TTA, for one run or an ensemble.

The validation rows are rebuilt from each checkpoint's config (data, val_fraction, seed, fold,
folds -> the identical split: :meth:`fastleaf.predict.run_folder.SavedRun.table`), or read from
a labelled CSV.  Fold runs of one k-fold each score their own held-out fold, and the folds'
predictions are pooled (out-of-fold scoring).

    result = evaluate_checkpoints(["runs/cnn-20240101"], tta="flips")
    result.metrics["none"]["sum"], result.metrics["flips"]["sum"]
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from rich.table import Table

from ..data.csv_source import data_folder, labelled_frame
from ..data.table import DataError, Layout, Samples, encode_labels, samples_from_frame
from ..errors import UsageError
from ..train.metrics import classification_metrics
from ..utils.console import console
from ..vocab import METRICS
from .ensemble import Member, PredictSettings, ensemble_probs, load_members
from .tta import view_count


@dataclass
class EvalResult:
    metrics: dict[str, dict[str, float]]     # TTA name -> acc, f1_macro, kappa, sum
    img_per_s: dict[str, float]              # TTA name -> images per second
    images: int
    source: str                              # which rows were scored
    members: list[Member]
    how: list[str]                           # how each member was run


def labelled_csv_samples(csv: str | Path, data_dir: str | Path, classes: list[str],
                         image_col: str = "image", label_col: str = "label") -> Samples:
    """The ``image_col`` and ``label_col`` of every row of ``csv``, image paths relative to
    ``data_dir``."""
    csv = Path(csv)
    frame = labelled_frame(csv, image_col, label_col)
    try:
        labels, _ = encode_labels(frame["label"], classes)
    except DataError as err:
        raise DataError(f"{csv} {err}") from None
    layout = Layout(csv, csv, Path(data_dir))
    return samples_from_frame(csv.stem, frame, labels, layout, csv)


def run_val_samples(member: Member, data_dir) -> Samples:
    """The validation split ``member``'s run trained with (``data_dir`` replaces its data)."""
    try:
        return member.run.val_samples(data_dir)
    except DataError as err:
        raise DataError(f"{err} (the run's data folder; pass --data to point elsewhere)") from None


def _pooled(groups, ttas) -> tuple[dict, dict, torch.Tensor]:
    """Concatenate per-group outputs -> (TTA -> probs, TTA -> seconds, labels)."""
    probs = {t: torch.cat([out[t].probs for _, out in groups]) for t in ttas}
    seconds = {t: sum(out[t].seconds for _, out in groups) for t in ttas}
    labels = torch.cat([out[ttas[0]].labels for _, out in groups])
    return probs, seconds, labels


def evaluate_checkpoints(checkpoints: Sequence[str | Path], *, tta: str = PredictSettings.tta,
                         data_dir=None, csv=None, weights=None,
                         settings: PredictSettings | None = None,
                         columns: tuple[str, str] = ("image", "label"),
                         images_root=None) -> EvalResult:
    """Score checkpoints (one run, fold runs or an ensemble) without TTA and with ``tta``.

    Args:
        checkpoints: ``best.pt`` files, run folders or folders of fold runs.
        tta: a TTA name (``fastleaf.vocab.TTA_NAMES``).
        data_dir: data folder; default: each run's own ``config["data"]``.
        csv: a labelled CSV instead of the runs' validation splits: its ``columns`` (image,
            label), the image paths relative to ``images_root``, else ``data_dir``, else the
            first run's own image folder.
        weights: per-checkpoint weights, see ``load_members``.
        settings: device, batch size, loader; precision and batch size default to the run's
            own, so ``tta="none"`` reproduces the training run's validation metrics.
    """
    settings = settings or PredictSettings(batch_size=None, amp=None, amp_dtype=None,
                                           channels_last=None)
    members = load_members(checkpoints, weights)
    classes = members[0].classes
    ttas = ["none"] if tta == "none" else ["none", tta]
    if csv is not None:
        root = images_root or data_dir or data_folder(members[0].train_config.data) or "."
        samples = labelled_csv_samples(csv, root, classes, *columns)
        groups = [(samples, ensemble_probs(members, samples, settings, ttas))]
        source = f"{csv} ({len(samples)} rows)"
    else:
        by_key: dict[tuple, list[Member]] = {}
        for m in members:
            by_key.setdefault(m.run.split_key(data_dir), []).append(m)
        groups = [(s, ensemble_probs(group, s, settings, ttas))
                  for s, group in ((run_val_samples(g[0], data_dir), g) for g in by_key.values())]
        rows = np.concatenate([s.rows for s, _ in groups])
        if len(np.unique(rows)) != len(rows):
            raise UsageError("these checkpoints validate on different, overlapping splits; "
                             "score them together on one labelled --csv instead")
        source = (f"validation split ({len(rows)} rows)" if len(groups) == 1 else
                  f"out-of-fold predictions of {len(groups)} folds ({len(rows)} rows)")
    probs, seconds, labels = _pooled(groups, ttas)
    metrics = {t: classification_metrics(labels.numpy(), probs[t].argmax(-1).numpy())
               for t in ttas}
    rates = {t: len(labels) / max(seconds[t], 1e-9) for t in ttas}
    how = [h for _, out in groups for h in out["none"].how]
    return EvalResult(metrics, rates, len(labels), source, members, how)


def print_evaluation(result: EvalResult) -> None:
    """A rich table: one row per TTA setting, plus the gain TTA buys."""
    table = Table(title=f"{len(result.members)} checkpoint(s) on {result.source}",
                  show_edge=False)
    for column in ("TTA", "views", *METRICS, "img/s"):
        table.add_column(column, justify="right")
    for name, m in result.metrics.items():
        table.add_row(name, str(view_count(name)), *(f"{m[k]:.4f}" for k in METRICS),
                      f"{result.img_per_s[name]:.1f}")
    names = list(result.metrics)
    if len(names) == 2:
        base, tta = (result.metrics[n] for n in names)
        table.add_row("gain", "", *(f"{tta[k] - base[k]:+.4f}" for k in METRICS), "",
                      style="bold")
    console.print(table)
    for how in dict.fromkeys(result.how):
        console.print(how)
