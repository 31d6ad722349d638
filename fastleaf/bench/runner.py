"""The code a bench case runs: the model as ``fastleaf train`` wraps it, and one bounded pass
of training steps, prediction batches or the loader alone."""
from __future__ import annotations

import torch
import torch.nn as nn

from ..config import TrainConfig
from ..errors import UsageError
from ..train.precision import Precision


def build_case_model(name: str, flags, num_classes: int, img_size: int,
                     device: torch.device) -> nn.Module:
    """The model as ``fastleaf train`` wraps it: device -> channels_last -> compile."""
    from ..train.build import build_model

    cfg = TrainConfig(model=name, channels_last=flags.channels_last, compile=flags.compile,
                      img_size=img_size)
    return build_model(cfg, num_classes, device)[1]


def mode_runner(model: nn.Module, mode: str, precision: Precision):
    """A function that runs one bounded pass: training steps or prediction batches."""
    from ..train.loop import predict_logits, train_one_epoch
    from ..train.optim import create_optimizer

    if mode == "load":
        # the loader alone (training views, batches on the device); the model is not run
        return lambda steps: sum(1 for _ in steps)
    if mode == "infer":
        return lambda steps: predict_logits(model, steps, precision)
    if mode != "train":
        raise UsageError(f"unknown bench mode {mode!r}: train, infer or load")
    # forward + backward + optimizer step, exactly the training loop's step
    optimizer = create_optimizer(model)       # the paper's Adam at its rate (the config's)
    loss_fn = nn.CrossEntropyLoss()
    return lambda steps: train_one_epoch(model, steps, optimizer, precision, loss_fn)


