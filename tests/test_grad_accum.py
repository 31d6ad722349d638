"""``--grad-accum N``: N micro-batches of b images give the update of one batch of N*b."""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn as nn

from fastleaf.train.loop import accumulation_groups, train_one_epoch
from fastleaf.train.precision import create_precision

FP32 = create_precision(False, torch.device("cpu"))


class Batches(list):
    """A list of (images, labels) with the loader's len()."""


def net():
    torch.manual_seed(0)
    # BatchNorm would see other batch statistics in micro-batches: equivalence is for the
    # gradient, so the model has none (a plain convnet and a head)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(4, 3))


def data(n):
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, 3, 8, 8, generator=g), torch.randint(0, 3, (n,), generator=g)


def test_groups_close_every_n_and_the_short_last_group_averages_itself():
    assert list(accumulation_groups(5, 2)) == [(2, False), (2, True), (2, False), (2, True),
                                               (1, True)]
    assert list(accumulation_groups(3, 1)) == [(1, True)] * 3


@pytest.mark.parametrize("optimizer, clip", [("sgd", 0.0), ("adam", 0.0), ("sgd", 0.05)])
def test_n_micro_batches_update_like_one_large_batch(optimizer, clip):
    x, y = data(24)
    make = {"sgd": lambda p: torch.optim.SGD(p, lr=0.5, momentum=0.9),
            "adam": lambda p: torch.optim.Adam(p, lr=0.01)}[optimizer]
    big, small = net(), net()
    small.load_state_dict(copy.deepcopy(big.state_dict()))
    loss = nn.CrossEntropyLoss()
    # 2 optimizer steps: batches of 12, or 3 micro-batches of 4 each
    train_one_epoch(big, Batches([(x[:12], y[:12]), (x[12:], y[12:])]), make(big.parameters()),
                    FP32, loss, grad_clip=clip)
    micro = Batches([(x[i:i + 4], y[i:i + 4]) for i in range(0, 24, 4)])
    steps = []
    stats = train_one_epoch(small, micro, make(small.parameters()), FP32, loss, grad_clip=clip,
                            accum=3, after_step=lambda: steps.append(1))
    assert len(steps) == 2 and stats.images == 24
    for a, b in zip(big.parameters(), small.parameters()):
        assert torch.allclose(a, b, atol=1e-5), (a - b).abs().max()


def test_a_short_last_group_is_one_batch_of_its_own_size():
    x, y = data(20)
    big, small = net(), net()
    opt_big = torch.optim.SGD(big.parameters(), lr=0.5)
    opt_small = torch.optim.SGD(small.parameters(), lr=0.5)
    loss = nn.CrossEntropyLoss()
    train_one_epoch(big, Batches([(x[:12], y[:12]), (x[12:], y[12:])]), opt_big, FP32, loss)
    micro = Batches([(x[i:i + 4], y[i:i + 4]) for i in range(0, 20, 4)])      # 3 + 2
    train_one_epoch(small, micro, opt_small, FP32, loss, accum=3)
    for a, b in zip(big.parameters(), small.parameters()):
        assert torch.allclose(a, b, atol=1e-5)
