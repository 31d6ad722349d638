"""Pseudo-labels: predict test.csv with an ensemble (or a blend) and write a data folder
whose train.csv adds the confident rows (:mod:`fastleaf.data.pseudo` writes the folder).

    fastleaf pseudo-label --checkpoint runs/k5 --data DIR --threshold 0.9 --out DIR-pseudo
    fastleaf train --data DIR-pseudo --folds 5 ...
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..data.pseudo import check_pseudo_folder, pseudo_frame, write_pseudo_folder
from ..data.table import PSEUDO, DataError, read_csv, resolve_layout
from ..errors import UsageError
from .blend import blend_ensemble
from .ensemble import PredictSettings, ensemble_probs, load_members
from .submission import read_test_samples


@dataclass
class PseudoResult:
    out_dir: Path
    added: int             # test rows that became training rows
    test_rows: int
    train_rows: int        # original training rows
    per_class: dict[str, int]


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
    if not 0.0 <= threshold <= 1.0:
        raise UsageError(f"--threshold must be in [0, 1], got {threshold}")
    settings = settings or PredictSettings()
    layout = resolve_layout(data_dir)
    train = read_csv(layout.train_csv, ("image", "label"))
    samples = read_test_samples(data_dir)
    check_pseudo_folder(data_dir, out_dir)
    if blend is not None:
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
