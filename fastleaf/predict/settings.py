"""How prediction runs the models; free of torch, so the CLI flags take their defaults here."""
from __future__ import annotations

from dataclasses import dataclass, fields

from ..config import MAX_WORKERS, Range, check_number
from . import DEFAULT_CROP_FRACTION

# the range of each number a prediction takes (the same rule as a training option's)
RANGES = {"crop_fraction": Range(0, 1, open_low=True), "batch_size": Range(1),
          "workers": Range(0, MAX_WORKERS)}


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

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                check_number(f.name, value, f"--{f.name.replace('_', '-')}", RANGES)
