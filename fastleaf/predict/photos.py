"""``predict_photos``: what species is in this photo (or in each photo of a folder)?

Any file Pillow reads works, at any size or mode (grayscale, RGBA, CMYK, PNG, ...): each photo
goes through the same loader seam and eval preset as validation, so it is decoded, resized and
normalised exactly as the checkpoint was trained.

    result = predict_photos("leaf.jpg", ["runs/resnet18"], top=5)
    result.top[0]                      # [("acer_rubrum", 0.91), ("acer_saccharum", 0.04), ...]
    predict_photos("photos/", ["runs/resnet18"]).write_csv("predictions.csv")
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..data.imageio import ImageDecodeError, probe, read_bytes
from ..data.table import UNLABELLED, DataError, Samples
from ..errors import UsageError
from ..utils.paths import output_file
from .ensemble import EnsembleOutput, Member, PredictSettings, ensemble_probs, load_members
from .photo_list import find_photos, write_photo_csv


@dataclass
class PhotoPrediction:
    files: list[Path]
    members: list[Member]
    classes: list[str]
    probs: torch.Tensor             # (N, classes), each row sums to 1
    output: EnsembleOutput
    top_k: int = 5
    skipped: list[str] = field(default_factory=list)    # why each left-out file was unreadable

    @property
    def top(self) -> list[list[tuple[str, float]]]:
        """Per photo, the ``top_k`` most likely species with their probabilities."""
        k = min(self.top_k, len(self.classes))
        values, index = self.probs.topk(k, dim=-1)
        return [[(self.classes[int(i)], float(v)) for v, i in zip(vs, idx)]
                for vs, idx in zip(values, index)]

    def write_csv(self, path: str | Path, root: Path | None = None) -> Path:
        """``image,label,probability``: one row per photo (names relative to ``root``)."""
        return write_photo_csv(path, self.files, self.top, root)


def readable_photos(files: Sequence[Path]) -> tuple[list[Path], list[str]]:
    """(the files whose header reads, within the pixel limit; why each other one is left out).

    A folder of photos is often a camera dump: a text file or an empty file among them is
    reported and skipped here, so that it does not stop the whole folder.
    """
    good, skipped = [], []
    for file in files:
        try:
            probe(read_bytes(file), file)
        except ImageDecodeError as err:
            skipped.append(str(err))
        else:
            good.append(file)
    return good, skipped


def photo_samples(files: Sequence[Path], source: Path) -> Samples:
    """Unlabelled samples in ``files`` order; errors name ``source`` and the file."""
    n = len(files)
    return Samples("photos", list(files), np.full(n, UNLABELLED, dtype=np.int64),
                   np.arange(n, dtype=np.int64), source, [f.name for f in files])


def predict_photos(target: str | Path, checkpoints: Sequence[str | Path], *, top: int = 5,
                   weights=None, settings: PredictSettings | None = None,
                   out: str | Path | None = None) -> PhotoPrediction:
    """Species probabilities for one photo or every photo in a folder.

    Args:
        target: an image file or a folder of them (not searched recursively).
        checkpoints: ``best.pt`` files, run folders or folders of fold runs (an ensemble).
        top: how many species :attr:`PhotoPrediction.top` lists per photo.
        weights: ensemble member weights (see ``load_members``).
        settings: TTA, device, precision, batch size, loader.
        out: also write the ``image,label,probability`` CSV here; checked before any photo is
            predicted, so it never replaces a photo or a checkpoint.
    """
    if top < 1:
        raise UsageError(f"--top must be at least 1, got {top}")
    settings = settings or PredictSettings()
    members = load_members(checkpoints, weights)
    files, skipped = find_photos(target), []
    if Path(target).is_dir():
        files, skipped = readable_photos(files)
        if not files:
            raise DataError(f"{target}: no readable photos ({'; '.join(skipped[:3])})")
    if out is not None:
        output_file(out, "--out", [*files, *(m.path for m in members)])
    output = ensemble_probs(members, photo_samples(files, Path(target)), settings)[settings.tta]
    result = PhotoPrediction(files, members, members[0].classes, output.probs, output, top,
                             skipped)
    if out is not None:
        result.write_csv(out, root=Path(target) if Path(target).is_dir() else None)
    return result
