"""Which parameters are the head, and training only the head for the first epochs.

    freezer = BackboneFreeze(model, epochs=2)
    freezer.set_epoch(1)     # backbone frozen: no gradients, its norm layers keep their statistics
    freezer.set_epoch(3)     # everything trains

A new 176-class head on a pretrained backbone starts random; its first large gradients would
otherwise flow into (and disturb) the pretrained features.
"""
from __future__ import annotations

import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm

from ..errors import UsageError


def head_module(model: nn.Module) -> nn.Module:
    """The classifier: timm's ``get_classifier()``, else a ``head``/``classifier`` attribute,
    else the last Linear layer."""
    getter = getattr(model, "get_classifier", None)
    head = getter() if callable(getter) else None
    if isinstance(head, nn.Module) and any(True for _ in head.parameters()):
        return head
    for name in ("head", "classifier", "fc"):
        head = getattr(model, name, None)
        if isinstance(head, nn.Module) and any(True for _ in head.parameters()):
            return head
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise UsageError(f"{type(model).__name__}: no classifier head found")
    return linears[-1]


def head_parameter_ids(model: nn.Module) -> set[int]:
    return {id(p) for p in head_module(model).parameters()}


class BackboneFreeze:
    """Freeze everything but the head for epochs ``1..epochs`` (1-based), then release it."""

    def __init__(self, model: nn.Module, epochs: int):
        self.model, self.epochs = model, epochs
        head = head_parameter_ids(model)
        self.backbone = [p for p in model.parameters() if id(p) not in head and p.requires_grad]
        head_modules = set(head_module(model).modules())
        self.norms = [m for m in model.modules()
                      if isinstance(m, _BatchNorm) and m not in head_modules]
        self.hook = None
        self.frozen = False

    def _norms_eval(self, *_):
        # model.train() runs before every epoch; the hook puts the backbone's norms back
        for m in self.norms:
            m.eval()

    def set_epoch(self, epoch: int) -> bool:
        """Apply the state for ``epoch``; returns whether the backbone is frozen."""
        frozen = epoch <= self.epochs
        if frozen == self.frozen:
            return frozen
        for p in self.backbone:
            p.requires_grad_(not frozen)
        if frozen:
            self.hook = self.model.register_forward_pre_hook(self._norms_eval)
        elif self.hook is not None:
            self.hook.remove()
            self.hook = None
        self.frozen = frozen
        return frozen
