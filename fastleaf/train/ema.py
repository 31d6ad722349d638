"""An exponential moving average of the weights (timm's ModelEmaV3), updated every step.

Validation and ``best.pt`` use the average; ``last.pt`` keeps both, so a resumed run continues
the same average.  With warmup the effective decay starts low (the average follows the fast
early changes of a fine-tune) and rises towards ``decay``.

    ema = create_ema(model, decay=0.998)
    ema.update(model, step)       # after each optimizer step
    ema.module                    # the averaged model, in eval mode
"""
from __future__ import annotations

import torch.nn as nn

from ..errors import UsageError


def create_ema(model: nn.Module, decay: float):
    """The EMA copy of ``model`` (on the model's device), or a clear error for a bad decay."""
    if not 0.0 < decay < 1.0:
        raise UsageError(f"--model-ema-decay must be in (0, 1), got {decay}")
    from timm.utils import ModelEmaV3

    ema = ModelEmaV3(model, decay=decay, use_warmup=True)
    ema.module.requires_grad_(False)
    return ema
