"""Optimizer and learning-rate schedule factories.

Paper default: Adam(lr 3e-4) + ReduceLROnPlateau(min, factor 0.5, patience 5) on val loss.
Option: AdamW + cosine with linear warmup (timm's CosineLRScheduler, stepped per epoch).
"""
from __future__ import annotations

import torch
import torch.nn as nn


def create_optimizer(model: nn.Module, name: str = "adam", lr: float = 3e-4,
                     weight_decay: float = 0.0) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters")
    # CUDA: one fused kernel for the whole step, which also takes GradScaler's inf check on
    # the device (no per-step host sync); the CPU keeps the default implementation
    fused = {"fused": True} if all(p.is_cuda for p in params) else {}
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, **fused)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay or 0.05, **fused)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True,
                               weight_decay=weight_decay, **fused)
    raise ValueError(f"unknown optimizer {name!r}: adam, adamw or sgd")


class Schedule:
    """Uniform ``step(epoch, val_loss)`` over plateau, cosine and constant schedules."""

    def __init__(self, optimizer, name: str = "plateau", epochs: int = 20, warmup_epochs: int = 0,
                 factor: float = 0.5, patience: int = 5, min_lr: float = 1e-6):
        self.name = name
        self.optimizer = optimizer
        if name == "plateau":
            self.impl = torch.optim.lr_scheduler.ReduceLROnPlateau(
                optimizer, mode="min", factor=factor, patience=patience)
        elif name == "cosine":
            from timm.scheduler import CosineLRScheduler

            self.impl = CosineLRScheduler(optimizer, t_initial=max(1, epochs - warmup_epochs),
                                          lr_min=min_lr, warmup_t=warmup_epochs,
                                          warmup_lr_init=min_lr, warmup_prefix=True)
        elif name == "none":
            self.impl = None
        else:
            raise ValueError(f"unknown scheduler {name!r}: plateau, cosine or none")

    def step(self, epoch: int, val_loss: float) -> None:
        """Call after finishing ``epoch`` (1-based)."""
        if self.name == "plateau":
            self.impl.step(val_loss)
        elif self.name == "cosine":
            self.impl.step(epoch)

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def state_dict(self) -> dict:
        return self.impl.state_dict() if self.impl is not None else {}

    def load_state_dict(self, state: dict) -> None:
        if self.impl is not None and state:
            self.impl.load_state_dict(state)
