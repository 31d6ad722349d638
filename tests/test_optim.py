"""Optimizer factory and gradient clipping in the training loop."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from fastleaf.errors import FastleafError
from fastleaf.train.loop import train_one_epoch
from fastleaf.train.optim import create_optimizer, resolve_weight_decay
from fastleaf.train.precision import create_precision


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Linear(4, 8)
        self.norm = nn.LayerNorm(8)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        return self.head(torch.relu(self.norm(self.body(x))))


@pytest.mark.parametrize("name, cls", [("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW),
                                       ("sgd", torch.optim.SGD)])
def test_each_name_builds_its_optimizer_over_every_parameter(name, cls):
    model = Tiny()
    opt = create_optimizer(model, name, lr=0.01)
    assert type(opt) is cls
    covered = {id(p) for g in opt.param_groups for p in g["params"]}
    assert covered == {id(p) for p in model.parameters()}
    assert all(g["lr"] == 0.01 for g in opt.param_groups)
    if name == "sgd":
        assert opt.defaults["momentum"] == 0.9 and opt.defaults["nesterov"]


def decays(opt) -> set[float]:
    return {g["weight_decay"] for g in opt.param_groups if any(p.ndim > 1 for p in g["params"])}


def test_weight_decay_default_per_optimizer_and_explicit_zero_is_kept():
    assert resolve_weight_decay("adamw", None) == 0.05
    assert resolve_weight_decay("adam", None) == 0.0
    assert resolve_weight_decay("sgd", None) == 0.0
    assert resolve_weight_decay("adamw", 0) == 0.0       # explicit 0 is not "unset"
    assert resolve_weight_decay("adam", 0.01) == 0.01
    assert decays(create_optimizer(Tiny(), "adamw")) == {0.05}
    assert decays(create_optimizer(Tiny(), "adamw", weight_decay=0.0)) == {0.0}
    assert decays(create_optimizer(Tiny(), "adam")) == {0.0}
    assert decays(create_optimizer(Tiny(), "sgd", weight_decay=1e-4)) == {1e-4}


def test_norm_weights_and_biases_get_no_weight_decay():
    opt = create_optimizer(Tiny(), "adamw", weight_decay=0.1)
    for g in opt.param_groups:
        vectors = {p.ndim <= 1 for p in g["params"]}
        assert len(vectors) == 1                          # groups never mix matrices and vectors
        assert g["weight_decay"] == (0.0 if vectors == {True} else 0.1)


def test_backbone_lr_scales_only_the_backbone():
    model = Tiny()
    opt = create_optimizer(model, "adamw", lr=0.01, backbone_lr=0.1)
    head = {id(p) for p in model.head.parameters()}
    for g in opt.param_groups:
        in_head = {id(p) in head for p in g["params"]}
        assert len(in_head) == 1
        assert g["lr"] == pytest.approx(0.01 if in_head == {True} else 0.001)


def test_unknown_optimizer_is_a_user_error_naming_it():
    with pytest.raises(FastleafError, match="lamb"):
        create_optimizer(Tiny(), "lamb")


def test_no_trainable_parameters_is_a_user_error():
    model = Tiny()
    model.requires_grad_(False)
    with pytest.raises(FastleafError, match="no trainable parameters"):
        create_optimizer(model, "adam")


class Batches:
    """A loader of fixed batches whose targets push the gradients far above any small clip."""

    def __init__(self, n: int = 3):
        g = torch.Generator().manual_seed(0)
        self.batches = [(torch.randn(6, 4, generator=g) * 50, torch.randint(0, 3, (6,), generator=g))
                        for _ in range(n)]

    def __iter__(self):
        return iter(self.batches)

    def __len__(self):
        return len(self.batches)


def step_norms(grad_clip: float) -> list[float]:
    """Total gradient norm seen by each ``optimizer.step`` over one epoch."""
    torch.manual_seed(0)
    model = Tiny()
    opt = create_optimizer(model, "sgd", lr=0.01)
    norms = []
    step = opt.step

    def recording_step(*args, **kwargs):
        grads = [p.grad.detach().flatten() for p in model.parameters() if p.grad is not None]
        norms.append(float(torch.cat(grads).norm()))
        return step(*args, **kwargs)

    opt.step = recording_step
    precision = create_precision(False, torch.device("cpu"))
    train_one_epoch(model, Batches(), opt, precision, nn.CrossEntropyLoss(), grad_clip=grad_clip)
    return norms


def test_grad_clip_bounds_the_total_norm_at_every_step():
    clip = 0.1
    unclipped = step_norms(0.0)
    assert len(unclipped) == 3
    assert min(unclipped) > 2 * clip                       # the data really needs clipping
    clipped = step_norms(clip)
    assert len(clipped) == 3
    assert all(n <= clip * (1 + 1e-4) for n in clipped)
    assert clipped[0] == pytest.approx(clip, rel=1e-3)     # scaled down to the clip, not zeroed


def test_grad_clip_leaves_small_gradients_alone():
    unclipped = step_norms(0.0)
    assert step_norms(1e6) == pytest.approx(unclipped)
