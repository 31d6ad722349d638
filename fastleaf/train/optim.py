"""Optimizer and learning-rate schedule factories.

Paper default (the config's defaults, which the factories' own take): Adam(lr 3e-4) +
ReduceLROnPlateau(min, factor 0.5, patience 5) on val loss.
Fine-tuning: AdamW + cosine with linear warmup, stepped every iteration (timm's
CosineLRScheduler), a lower learning rate for the pretrained backbone (``backbone_lr``) or
layer-wise decay (``layer_decay``), and no weight decay on norm layers and biases.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from ..config import TrainConfig as D      # the defaults: the config's, stated once there
from ..errors import UsageError
from .freeze import head_parameter_ids

DEFAULT_WEIGHT_DECAY = {"adam": 0.0, "adamw": 0.05, "sgd": 0.0}


def resolve_weight_decay(name: str, weight_decay: float | None) -> float:
    """``None`` means the optimizer's default; an explicit value (0 included) is kept."""
    if name not in DEFAULT_WEIGHT_DECAY:
        raise UsageError(f"unknown optimizer {name!r}: adam, adamw or sgd")
    return DEFAULT_WEIGHT_DECAY[name] if weight_decay is None else float(weight_decay)


def param_groups(model: nn.Module, lr: float, weight_decay: float, backbone_lr: float = 1.0,
                 layer_decay: float | None = None) -> list[dict]:
    """Groups by (head or backbone) x (decayed or not): norm weights and biases (1-d tensors)
    get no weight decay; backbone groups run at ``lr * backbone_lr``.  With ``layer_decay``,
    timm's layer-wise groups: each layer's rate shrinks by that factor per layer from the top."""
    if layer_decay:
        from timm.optim import param_groups_layer_decay

        groups = param_groups_layer_decay(model, weight_decay, layer_decay=layer_decay)
        for g in groups:
            # the scale is folded into the rate so every scheduler (not only timm's) honours it
            g["lr"] = lr * g.pop("lr_scale", 1.0)
        return [g for g in groups if g["params"]]
    head = head_parameter_ids(model)
    buckets: dict[tuple[bool, bool], list] = {}
    for p in model.parameters():
        if not p.requires_grad:
            continue
        buckets.setdefault((id(p) in head, p.ndim <= 1), []).append(p)
    return [{"params": params, "lr": lr if is_head else lr * backbone_lr,
             "weight_decay": 0.0 if no_decay else weight_decay}
            for (is_head, no_decay), params in sorted(buckets.items())]


def create_optimizer(model: nn.Module, name: str = D.optimizer, lr: float = D.lr,
                     weight_decay: float | None = D.weight_decay,
                     backbone_lr: float = D.backbone_lr,
                     layer_decay: float | None = D.layer_decay) -> torch.optim.Optimizer:
    weight_decay = resolve_weight_decay(name, weight_decay)
    groups = param_groups(model, lr, weight_decay, backbone_lr, layer_decay)
    if not groups:
        raise UsageError("the model has no trainable parameters")
    # CUDA: one fused kernel for the whole step, which also takes GradScaler's inf check on
    # the device (no per-step host sync); the CPU keeps the default implementation
    fused = {"fused": True} if all(p.is_cuda for g in groups for p in g["params"]) else {}
    if name == "adam":
        return torch.optim.Adam(groups, lr=lr, **fused)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, **fused)
    return torch.optim.SGD(groups, lr=lr, momentum=0.9, nesterov=True, **fused)


class Schedule:
    """Plateau (per epoch, on the validation loss), cosine with warmup (per iteration) or none.

    The trainer calls ``step_update()`` after every optimizer step and ``step(epoch, val_loss)``
    after every epoch; each schedule acts on the one that is its unit.
    """

    def __init__(self, optimizer, name: str = D.scheduler, epochs: int = D.epochs,
                 warmup_epochs: int = D.warmup_epochs, factor: float = D.plateau_factor,
                 patience: int = D.plateau_patience, min_lr: float = D.min_lr,
                 steps_per_epoch: int = 1):
        self.name = name
        self.optimizer = optimizer
        self.updates = 0
        if name == "plateau":
            self.impl = torch.optim.lr_scheduler.ReduceLROnPlateau(
                optimizer, mode="min", factor=factor, patience=patience)
        elif name == "cosine":
            from timm.scheduler import CosineLRScheduler

            steps = max(1, steps_per_epoch)
            self.impl = CosineLRScheduler(optimizer, t_initial=max(1, epochs - warmup_epochs) * steps,
                                          lr_min=min_lr, warmup_t=warmup_epochs * steps,
                                          warmup_lr_init=min_lr, warmup_prefix=True,
                                          t_in_epochs=False)
        elif name == "none":
            self.impl = None
        else:
            raise UsageError(f"unknown scheduler {name!r}: plateau, cosine or none")

    def step_update(self) -> None:
        """Call after every optimizer step."""
        self.updates += 1
        if self.name == "cosine":
            self.impl.step_update(self.updates)

    def step(self, epoch: int, val_loss: float) -> None:
        """Call after finishing ``epoch`` (1-based)."""
        if self.name == "plateau":
            self.impl.step(val_loss)

    @property
    def lr(self) -> float:
        """The highest rate of any group (the head's when the backbone runs slower)."""
        return max(float(g["lr"]) for g in self.optimizer.param_groups)

    def state_dict(self) -> dict:
        state = self.impl.state_dict() if self.impl is not None else {}
        return {**state, "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        state = dict(state)
        self.updates = int(state.pop("updates", 0))
        if self.impl is not None and state:
            self.impl.load_state_dict(state)
        if self.name == "cosine" and self.updates:
            self.impl.step_update(self.updates)
