"""``tta_predict``: test.csv -> (TTA x checkpoint ensemble) -> a checked ``submission.csv``.

    from fastleaf.predict.runner import tta_predict
    from fastleaf.predict.ensemble import PredictSettings
    result = tta_predict("data/classify-leaves", ["runs/kfold"], out="submission.csv",
                         settings=PredictSettings(tta="flips"))
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..data.table import data_files
from ..errors import UsageError
from ..utils.paths import output_file
from .blend import blend_ensemble
from .ensemble import EnsembleOutput, Member, PredictSettings, ensemble_probs, load_members
# the test rows are read where the submission is written (free of torch, for exported models)
from .submission import (probs_format, read_test_samples, require_images,  # noqa: F401
                         write_predictions, write_probs)


@dataclass
class PredictResult:
    out: Path
    rows: int
    members: list[Member]
    output: EnsembleOutput
    probs_file: Path | None = None
    columns: tuple[str, ...] = ("image", "label")     # a submission, else with probability

    @property
    def img_per_s(self) -> float:
        return self.output.img_per_s


def blend_inputs(blend: str | Path) -> list[Path]:
    """The blend file and every checkpoint its members hold: inputs, known before any output
    is checked."""
    from .blend import read_blend
    from .ensemble import expand_checkpoint

    return [Path(blend), *(p for m in read_blend(blend) for p in expand_checkpoint(m["run"]))]


def tta_predict(data_dir, checkpoints: Sequence[str | Path], *, out: str | Path = "submission.csv",
                weights=None, settings: PredictSettings | None = None,
                save_probs: str | Path | None = None,
                blend: str | Path | None = None) -> PredictResult:
    """Predict every test row and write the submission (and optionally the probabilities).

    Args:
        data_dir: Kaggle-layout folder holding test.csv, or None for ``references/test.csv``;
            a folder-per-class tree or a CSV source (their test rows), written as
            ``image,label,probability`` (:func:`write_predictions`).
        checkpoints: ``best.pt`` files, run folders or folders of fold runs.
        out: submission path (written atomically, after it is checked).
        weights: per-checkpoint weights (``"1,2"`` or a list), see ``load_members``.
        settings: TTA, batch size, device, precision, loader.
        save_probs: also write the averaged probabilities (``.npy`` or ``.csv``).
        blend: a ``blend.json`` (``fastleaf blend``) instead of ``checkpoints``: every fold
            model of every member, weighted as the blend says.
    Returns:
        a :class:`PredictResult` with the path, row count and img/s.
    """
    settings = settings or PredictSettings()
    if save_probs:
        probs_format(save_probs)
    if blend is not None and (checkpoints or weights):
        raise UsageError("--blend names its own checkpoints and weights; drop --checkpoint "
                         "and --weights")
    if blend is None and not checkpoints:
        raise UsageError("name the models: --checkpoint PATH (repeatable) or --blend FILE")
    samples = read_test_samples(data_dir)
    members = load_members(checkpoints, weights) if blend is None else []
    # every output is checked before the first image is predicted: never an input, writable
    inputs = [*data_files(data_dir), *(m.path for m in members),
              *(blend_inputs(blend) if blend else [])]
    output_file(out, "--out", inputs)
    if save_probs:
        output_file(save_probs, "--save-probs", [*inputs, out])
    require_images(samples)
    if blend is not None:
        members, output = blend_ensemble(blend, samples, settings)
    else:
        output = ensemble_probs(members, samples, settings)[settings.tta]
    classes = members[0].classes
    probs = output.probs.float().numpy()
    path, columns = write_predictions(out, data_dir, samples.images, probs, classes)
    probs_file = None
    if save_probs:
        probs_file = write_probs(save_probs, samples.images, probs, classes)
    return PredictResult(path, len(samples), members, output, probs_file, columns)
