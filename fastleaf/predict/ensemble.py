"""Checkpoint ensembles: find and load checkpoints, check they agree, average their probabilities.

    members = load_members(["runs/kfold"], weights=None)        # a folder of fold runs
    outputs = ensemble_probs(members, table.test, PredictSettings(tta="flips"))
    outputs["flips"].probs                                       # (N, classes), rows sum to 1

Each checkpoint is run at its own data config (``img_size``, mean/std: what it was trained
with) through the loader seam (eval preset), so DALI or cache backends are used when available.
"""
from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch

from ..config import TrainConfig
from ..data.table import Samples
from ..errors import UsageError
from ..models.data_config import DataConfig
from ..train.checkpoint import CheckpointError
from ..train.loop import predict_logits
from ..train.precision import amp_is_fast, create_precision
from ..utils.console import tracked
from ..utils.device import configure_device, resolve_device
from . import tta as tta_views
from .run_folder import SavedRun, open_run
from .settings import PredictSettings


@dataclass
class Member:
    """One checkpoint of an ensemble and its (normalised) weight."""

    run: SavedRun
    weight: float = 1.0

    @property
    def path(self) -> Path:
        return self.run.path

    @property
    def train_config(self) -> TrainConfig:
        return self.run.config

    @property
    def classes(self) -> list[str]:
        return self.run.classes

    @property
    def data(self) -> DataConfig:
        return self.run.data

    @property
    def img_size(self) -> int:
        return self.data.size


@dataclass
class EnsembleOutput:
    probs: torch.Tensor            # (N, classes) float32, weighted mean over views and members
    labels: torch.Tensor           # (N,) int64 as the loader yielded them (-1 = unlabelled)
    seconds: float                 # model time over all members (loader included)
    views: int                     # forward passes per image per member
    members: int
    per_member: list[float] = field(default_factory=list)   # img/s of each member
    how: list[str] = field(default_factory=list)            # how each member was run

    @property
    def img_per_s(self) -> float:
        return len(self.labels) / max(self.seconds, 1e-9)


def _natural_key(path: Path):
    # fold2 before fold10
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(path))]


def expand_checkpoint(spec: str | Path) -> list[Path]:
    """A ``.pt`` file, a run folder (its ``best.pt``) or a folder of runs (every ``*/best.pt``)."""
    path = Path(spec)
    if path.is_file():
        return [path]
    if path.is_dir():
        if (path / "best.pt").is_file():
            return [path / "best.pt"]
        found = sorted(path.glob("*/best.pt"), key=_natural_key)
        if found:
            return found
        raise CheckpointError(f"{path}: no best.pt in this folder or in its sub-folders")
    raise CheckpointError(f"checkpoint not found: {path}")


def parse_weights(text: str | Sequence[float] | None, count: int) -> list[float] | None:
    """``"1,2"`` -> ``[1.0, 2.0]``; refuses a wrong count, negatives and an all-zero list."""
    if text is None or text == "":
        return None
    try:
        values = [float(v) for v in text.split(",")] if isinstance(text, str) \
            else [float(v) for v in text]
    except ValueError:
        raise UsageError(f"--member-weights must be comma-separated numbers, got {text!r}") \
            from None
    if len(values) != count:
        raise UsageError(f"--member-weights has {len(values)} value(s) for {count} checkpoint(s)")
    # nan passes both comparisons below and would turn every probability into nan
    if not all(math.isfinite(v) for v in values):
        raise UsageError(f"--member-weights must be finite numbers, got {text!r}")
    if any(v < 0 for v in values) or sum(values) <= 0:
        raise UsageError(f"--member-weights must be >= 0 with a positive sum, got {text!r}")
    return values


def load_members(specs: Sequence[str | Path], weights=None) -> list[Member]:
    """Load every checkpoint that ``specs`` name and check that their class lists agree.

    Args:
        specs: files or folders (see :func:`expand_checkpoint`).
        weights: one weight per spec (a folder's weight is shared equally by its runs) or one
            per resolved checkpoint file; ``None`` weighs every checkpoint equally.
    Returns:
        the members, weights normalised to sum to 1.
    """
    groups = [expand_checkpoint(spec) for spec in specs]
    paths = [p for group in groups for p in group]
    if not paths:
        raise CheckpointError("no checkpoint given")
    raw = [1.0] * len(paths)
    if weights is not None:
        try:
            per_spec = parse_weights(weights, len(specs))
            raw = [w / len(group) for w, group in zip(per_spec, groups) for _ in group]
        except ValueError:
            if len(paths) == len(specs):
                raise
            raw = parse_weights(weights, len(paths))
    total = sum(raw)
    members = [Member(open_run(p), w / total) for p, w in zip(paths, raw)]
    check_classes(members)
    return members


def check_classes(members: Sequence[Member]) -> None:
    """Refuse members whose class lists differ (the output columns would not line up)."""
    first = members[0]
    for other in members[1:]:
        if other.classes == first.classes:
            continue
        a, b = first.classes, other.classes
        diff = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
        detail = (f"{len(a)} vs {len(b)} classes" if len(a) != len(b) else
                  f"class {diff} is {a[diff]!r} vs {b[diff]!r}")
        raise CheckpointError(f"checkpoints {first.path} and {other.path} were trained on "
                              f"different class lists ({detail}); they cannot be ensembled")


def average_probs(probs: Sequence[torch.Tensor], weights: Sequence[float] | None = None):
    """Weighted mean of ``(N, classes)`` probability tables (equal weights by default)."""
    stacked = torch.stack([p.float() for p in probs])                    # (M, N, C)
    w = torch.ones(len(probs)) if weights is None else torch.tensor(weights, dtype=torch.float32)
    return torch.einsum("m,mnc->nc", w / w.sum(), stacked)


def predict_probs(model, loader, precision, tta: str = "none",
                  crop_fraction: float = tta_views.DEFAULT_CROP_FRACTION):
    """Softmax ``(N, classes)``, labels ``(N,)`` and img/s of one model over ``loader``."""
    if tta == "none":
        # the plain path is the trainer's evaluation pass, so its numbers reproduce exactly
        logits, labels, rate = predict_logits(model, loader, precision)
        return logits.softmax(-1), labels, rate
    log_mean, labels, rate = predict_logits(model, loader, precision,
                                            views=tta_views.views(tta, crop_fraction))
    return log_mean.exp(), labels, rate


def _pick(value, trained):
    return trained if value is None else value


def prepare_member(member: Member, settings: PredictSettings, device: torch.device):
    """(model on ``device`` in eval mode, precision, channels_last, batch size) for one member."""
    trained = member.train_config
    channels_last = bool(_pick(settings.channels_last, trained.channels_last))
    amp = amp_is_fast(device) if settings.amp == "auto" else bool(_pick(settings.amp, trained.amp))
    precision = create_precision(amp, device, _pick(settings.amp_dtype, trained.amp_dtype))
    batch_size = int(_pick(settings.batch_size, trained.batch_size))
    return member.run.build_model(device, channels_last), precision, channels_last, batch_size


def ensemble_probs(members: Sequence[Member], samples: Samples, settings: PredictSettings,
                   ttas: Sequence[str] | None = None) -> dict[str, EnsembleOutput]:
    """Weighted mean probabilities of every member over ``samples``, for each TTA in ``ttas``.

    Args:
        members: loaded checkpoints with agreeing class lists (:func:`load_members`).
        samples: rows to predict, in order (test or validation rows).
        settings: device, precision, batch size, loader; ``settings.tta`` when ``ttas`` is None.
        ttas: several TTA names share one model build and one loader per member.
    Returns:
        TTA name -> :class:`EnsembleOutput`.
    """
    ttas = list(ttas or [settings.tta])
    device = resolve_device(settings.device)
    configure_device(device)
    expected = torch.tensor(samples.labels, dtype=torch.int64)   # a copy: may be read-only
    probs = {name: [] for name in ttas}
    seconds = {name: 0.0 for name in ttas}
    rates = {name: [] for name in ttas}
    how = []
    labels = expected
    for number, member in enumerate(members, start=1):
        model, precision, channels_last, batch_size = prepare_member(member, settings, device)
        loader = member.run.eval_loader(samples, device, batch_size=batch_size,
                                        channels_last=channels_last, loader=settings.loader,
                                        workers=settings.workers)
        how.append(f"{member.run.model_name} {member.img_size}px on {device}, "
                   f"{precision.name}{', channels_last' if channels_last else ''}, "
                   f"batch {batch_size}, {loader.backend} loader")
        for name in ttas:
            start = time.perf_counter()
            batches = tracked(loader, f"{name} views, checkpoint {number}/{len(members)}")
            p, labels, rate = predict_probs(model, batches, precision, name,
                                            settings.crop_fraction)
            seconds[name] += time.perf_counter() - start
            if len(labels) != len(expected) or not torch.equal(labels, expected):
                raise RuntimeError(f"the {loader.backend} loader returned {len(labels)} rows not "
                                   f"in the order of the {len(expected)} asked for")
            probs[name].append(p)
            rates[name].append(rate)
        del model, loader
    weights = [m.weight for m in members]
    return {name: EnsembleOutput(average_probs(probs[name], weights), labels, seconds[name],
                                 tta_views.view_count(name), len(members), rates[name], how)
            for name in ttas}
