"""An exponential moving average of the weights (timm's ModelEmaV3), updated every step.

Every epoch validates both the raw weights and the average; ``best.pt`` holds whichever
scores higher on the run's eval metric (its ``ema`` entry says which), so a run never saves
a worse model silently.  ``last.pt`` keeps both, so a resumed run continues the same average.

Only the weights are averaged; BatchNorm's running statistics are copied from the raw model
at every update.  Averaged statistics were the cause of the average's lag in short runs: at
the end of a 57-step run (benchmarks/ema_lag.py, 30 synthetic classes) the average scored 0.23
against the raw model's 0.84, the same averaged weights with the raw model's statistics 0.80,
with statistics re-estimated on the training images 0.84, and the raw weights with the
averaged statistics 0.29.  Statistics are an average of activations under older weights;
averaged again they lag twice, and no longer describe the weights they normalise.

The decay follows the run's length unless ``--model-ema-decay`` is given: the average spans
about ``HORIZON_FRACTION`` of the run's optimizer steps.  A fixed 0.998 spans 500 steps, three
times a 160-step fine-tune; timm's warmup (decay ``1 - t**-2/3`` at step ``t``) keeps it from
reaching 0.998 before step 11,180, so in such a run the average still trails by about 25 steps
(1.3 epochs of 20 steps) at the end.

    decay, why = resolve_decay(None, total_steps=160)     # 0.9375, "horizon 16 steps ..."
    ema = create_ema(model, decay)
    ema.update(model, step)       # after each optimizer step
    ema.module                    # the averaged model, in eval mode
    use_ema = prefer_ema(raw_metrics, ema_metrics, "acc")
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import UsageError
from ..vocab import METRICS

if TYPE_CHECKING:      # torch stays unimported: the CLI's help reads the constants below
    import torch.nn as nn

HORIZON_FRACTION = 0.1      # the average's horizon (1 / (1 - decay)) as a share of the run
DECAY_RANGE = (0.9, 0.9999)  # 10 to 10,000 steps: below 10 the average is the raw model
# the figures each epoch records for the raw weights and for the average (metrics.csv)
COMPARED = ("val_loss", *METRICS)
EMA_COLUMNS = ("ema", *(f"raw_{k}" for k in COMPARED), *(f"ema_{k}" for k in COMPARED))


def decay_for_steps(total_steps: int, fraction: float = HORIZON_FRACTION) -> float:
    """``1 - 1 / horizon`` for a horizon of ``fraction`` of ``total_steps``, within
    ``DECAY_RANGE``."""
    horizon = fraction * max(int(total_steps), 1)
    low, high = DECAY_RANGE
    return min(max(1.0 - 1.0 / horizon, low), high)


def resolve_decay(decay: float | None, total_steps: int) -> tuple[float, str]:
    """(the decay the run uses, why): an explicit ``decay`` wins; ``None`` follows the run."""
    if decay is not None:
        check_decay(decay)
        return float(decay), f"--model-ema-decay {decay:g}"
    chosen = decay_for_steps(total_steps)
    # a run whose share falls outside the range gets its nearer bound
    held = f", held within {DECAY_RANGE}" if chosen in DECAY_RANGE else ""
    return chosen, (f"horizon {1 / (1 - chosen):.0f} steps: {HORIZON_FRACTION:.0%} of the "
                    f"run's {total_steps} optimizer steps{held}; --model-ema-decay sets it")


def check_decay(decay: float) -> None:
    if not 0.0 < decay < 1.0:
        raise UsageError(f"--model-ema-decay must be in (0, 1), got {decay}")


def create_ema(model: nn.Module, decay: float):
    """The EMA copy of ``model`` (on the model's device), or a clear error for a bad decay."""
    check_decay(decay)
    from timm.utils import ModelEmaV3

    # exclude_buffers: the norm statistics are copied from the raw model, not averaged
    ema = ModelEmaV3(model, decay=decay, use_warmup=True, exclude_buffers=True)
    ema.module.requires_grad_(False)
    return ema


def prefer_ema(raw: dict, averaged: dict, metric: str) -> bool:
    """Whether the average is kept: it scores at least as high as the raw weights."""
    return averaged[metric] >= raw[metric]


def compared_fields(raw: dict, averaged: dict, use_ema: bool) -> dict:
    """The epoch row's record of both: ``raw_acc``, ``ema_acc``, ... and ``ema`` (the pick)."""
    return {"ema": use_ema, **{f"raw_{k}": raw[k] for k in COMPARED},
            **{f"ema_{k}": averaged[k] for k in COMPARED}}


def compared_text(row: dict, metric: str) -> str:
    """``  acc: raw 0.8100, ema 0.4200 -> raw`` for the epoch line; empty without an average."""
    if "ema" not in row:
        return ""
    return (f"  {metric}: raw {row[f'raw_{metric}']:.4f}, ema {row[f'ema_{metric}']:.4f} "
            f"-> {'ema' if row['ema'] else 'raw'}")
