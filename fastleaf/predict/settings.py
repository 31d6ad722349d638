"""How prediction runs the models; free of torch, so the CLI flags take their defaults here."""
from __future__ import annotations

from dataclasses import dataclass

from . import DEFAULT_CROP_FRACTION


@dataclass
class PredictSettings:
    """How to run the models.  ``None`` means "as the checkpoint was trained"; ``amp="auto"``
    turns autocast on where it is fast (see :func:`fastleaf.train.precision.amp_is_fast`)."""

    tta: str = "flips"           # the CLI's default too: every prediction command reads it here
    crop_fraction: float = DEFAULT_CROP_FRACTION
    batch_size: int | None = 256
    device: str = "auto"
    amp: bool | str | None = "auto"
    amp_dtype: str | None = "auto"
    channels_last: bool | None = True
    loader: str = "auto"
    workers: int | None = None
