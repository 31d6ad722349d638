"""What a run is built from: its model, its loaders, its loss and its speed defaults.

``fit`` (:mod:`fastleaf.train.trainer`), the learning-rate range test and the bench build the
same things the same way from a :class:`~fastleaf.config.TrainConfig`.
"""
from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn as nn

from ..config import TrainConfig
from ..data.table import Table
from ..errors import FastleafError
from ..loaders import (LoaderOptions, Shard, auto_choices, create_auto_loader, create_loader,
                       resolve_backend)
from ..loaders.cpu_split import plan_split
from ..loaders.fallback import Choices
from ..models import create_model, load_weights
from ..models.data_config import data_config_of, eval_spec, train_spec
from ..models.registry import place_model
from ..utils.console import console
from ..utils.device import usable_cores
from .precision import Precision, default_speed_flags, loader_dtype


def build_model(cfg: TrainConfig, num_classes: int, device: torch.device):
    """(model to save, model to run).  Wrapping order: device -> channels_last -> compile."""
    model = create_model(cfg.model, num_classes, pretrained=cfg.pretrained,
                         finetune_all=cfg.finetune_all, drop_path_rate=cfg.drop_path)
    if cfg.weights:
        report = load_weights(model, cfg.weights)
        console.print(f"weights {cfg.weights}: {report.summary()}")
    place_model(model, device, bool(cfg.channels_last))
    runnable = model
    if cfg.compile:
        # compile last, on the final layout; the uncompiled module keeps clean state-dict keys
        runnable = torch.compile(model)
    return model, runnable


def build_loaders(cfg: TrainConfig, table: Table, device: torch.device, precision: Precision,
                  shard: Shard = Shard()):
    # the number of distinct images lets `auto` judge whether the decoded set fits in RAM
    images = len(set(table.train.paths) | set(table.val.paths))
    ranked = auto_choices(device, images, cfg.img_size) if cfg.loader == "auto" else None
    backend, why = ranked[0] if ranked else resolve_backend(cfg.loader, device)
    dtype = loader_dtype(precision, device)
    # loader workers and torch threads share this process's part of the cores
    split = plan_split(device, backend, cfg.workers, cfg.threads,
                       max(1, usable_cores() // shard.count))
    split.apply()
    why = f"{why}; {split.describe()}"
    options = LoaderOptions(batch_size=cfg.batch_size, device=device,
                            channels_last=cfg.channels_last, workers=split.workers,
                            seed=cfg.seed, shard=shard, dtype=dtype)
    # the model's data config (size, mean/std) as resolved into the run's config
    data = data_config_of(cfg)
    # training drops the ragged last batch: BatchNorm cannot train on a batch of one, and
    # one shape keeps cuDNN's autotuner and torch.compile from re-tuning; eval keeps every row
    make = loader_factory(ranked)
    train = make(table.train, train_spec(data, cfg.augment),
                 replace(options, drop_last=True, balanced=cfg.sampler == "balanced"), backend)
    # a final fit (--val-fraction 0) has no validation rows and no validation loader
    val = make(table.val, eval_spec(data), options, backend) if len(table.val) else None
    return train, val, backend, why


def loader_factory(ranked: list[tuple[str, str]] | None):
    """``create_loader``, or for ``auto`` (``ranked`` choices) a factory whose loaders hand over
    to the next choice with one line when a backend fails to start, instead of ending the run;
    the run's loaders share one list, so a failure counts for both."""
    if not ranked:
        return create_loader
    choices = Choices([name for name, _ in ranked])
    return lambda samples, spec, options, _backend: create_auto_loader(samples, spec, options,
                                                                       choices)


def check_input_size(model: nn.Module, cfg: TrainConfig, device: torch.device) -> None:
    """One forward pass of a single blank image: a too small --img-size fails here, in words."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, cfg.img_size, cfg.img_size, device=device))
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0][:200]
        advice = "larger" if cfg.img_size < 224 else "smaller"
        raise FastleafError(f"--img-size {cfg.img_size} does not fit model {cfg.model!r} "
                            f"({first}); use a {advice} --img-size (224 is the data's)") from None
    finally:
        model.train(was_training)


def with_speed_defaults(cfg: TrainConfig, device: torch.device) -> TrainConfig:
    """Unset --amp / --channels-last take the measured defaults for ``device``; the saved
    config then holds what really ran."""
    amp, channels_last = default_speed_flags(device)
    return replace(cfg, amp=amp if cfg.amp is None else cfg.amp,
                   channels_last=channels_last if cfg.channels_last is None else cfg.channels_last)


def training_loss(cfg: TrainConfig, table: Table, device: torch.device) -> nn.Module:
    """Cross-entropy with the run's label smoothing, weighted by ``--class-weights``."""
    weight = None
    if cfg.class_weights == "balanced":
        weight = torch.as_tensor(class_weights(table.train.labels, table.num_classes),
                                 dtype=torch.float32, device=device)
    return nn.CrossEntropyLoss(weight=weight, label_smoothing=cfg.label_smoothing)


def class_weights(labels, num_classes: int):
    """scikit-learn's 'balanced' weights, n / (classes x count), for the classes present in
    training; a class with no training rows is never a target, its weight stays 1."""
    import numpy as np
    from sklearn.utils.class_weight import compute_class_weight

    present = np.unique(labels)
    weights = np.ones(num_classes)
    weights[present] = compute_class_weight("balanced", classes=present, y=labels)
    return weights
