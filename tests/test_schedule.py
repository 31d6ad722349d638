"""Learning-rate schedules: cosine with warmup per iteration, plateau per epoch, none."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn

from fastleaf.errors import FastleafError
from fastleaf.train.optim import Schedule

LR, MIN_LR = 0.1, 1e-4


def sgd(lr: float = LR) -> torch.optim.Optimizer:
    return torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=lr)


def run_cosine(epochs=5, warmup=1, steps=4):
    opt = sgd()
    sched = Schedule(opt, "cosine", epochs=epochs, warmup_epochs=warmup, min_lr=MIN_LR,
                     steps_per_epoch=steps)
    start = sched.lr
    lrs = []
    for _ in range(epochs * steps):
        opt.step()
        sched.step_update()
        lrs.append(sched.lr)
    return start, lrs


def test_cosine_warms_up_linearly_then_follows_the_cosine_to_min_lr():
    epochs, warmup, steps = 5, 1, 4
    start, lrs = run_cosine(epochs, warmup, steps)
    assert start == pytest.approx(MIN_LR)            # the first step runs at the warmup floor
    warm = warmup * steps
    # linear rise: equal increments of (lr - min_lr) / warmup steps
    for i in range(1, warm):
        assert lrs[i - 1] == pytest.approx(MIN_LR + i * (LR - MIN_LR) / warm)
    assert lrs[warm - 1] == pytest.approx(LR)        # warmup over: the peak is --lr
    total = (epochs - warmup) * steps
    for i in range(total):
        expected = MIN_LR + 0.5 * (LR - MIN_LR) * (1 + math.cos(math.pi * i / total))
        assert lrs[warm - 1 + i] == pytest.approx(expected, rel=1e-6)
    after = lrs[warm - 1:]
    assert all(a >= b for a, b in zip(after, after[1:]))   # monotone down after warmup
    assert len(lrs) == warm + total
    assert lrs[-1] == pytest.approx(MIN_LR)           # the last step lands on the floor


def test_cosine_without_warmup_starts_at_lr_and_reaches_min_lr():
    opt = sgd()
    sched = Schedule(opt, "cosine", epochs=3, warmup_epochs=0, min_lr=MIN_LR, steps_per_epoch=2)
    assert sched.lr == pytest.approx(LR)
    for _ in range(6):
        opt.step()
        sched.step_update()
    assert sched.lr == pytest.approx(MIN_LR)          # t_initial reached: the floor exactly


def test_plateau_lowers_lr_by_factor_after_patience_epochs_without_improvement():
    opt = sgd()
    sched = Schedule(opt, "plateau", factor=0.5, patience=2)
    sched.step(1, 1.0)                                 # best so far
    sched.step(2, 1.0)                                 # 1 bad epoch
    sched.step(3, 1.0)                                 # 2 bad epochs = patience: not yet
    assert sched.lr == pytest.approx(LR)
    sched.step(4, 1.0)                                 # 3rd bad epoch: cut
    assert sched.lr == pytest.approx(LR * 0.5)
    sched.step(5, 0.5)                                 # improvement resets the count
    sched.step(6, 0.5)
    sched.step(7, 0.5)
    assert sched.lr == pytest.approx(LR * 0.5)
    sched.step_update()                                # per-iteration calls do not touch plateau
    assert sched.lr == pytest.approx(LR * 0.5)


def test_plateau_keeps_lr_while_the_loss_keeps_improving():
    opt = sgd()
    sched = Schedule(opt, "plateau", factor=0.5, patience=0)
    for epoch, loss in enumerate([1.0, 0.9, 0.8, 0.7], 1):
        sched.step(epoch, loss)
    assert sched.lr == pytest.approx(LR)
    sched.step(5, 0.7)                                 # patience 0: first stall cuts
    assert sched.lr == pytest.approx(LR * 0.5)


def test_none_keeps_lr_constant():
    opt = sgd()
    sched = Schedule(opt, "none", epochs=3)
    for epoch in range(1, 4):
        for _ in range(5):
            opt.step()
            sched.step_update()
        sched.step(epoch, 10.0)                       # a stalled loss changes nothing either
        assert sched.lr == LR
    assert sched.state_dict() == {"updates": 15}


def test_unknown_scheduler_is_a_user_error():
    with pytest.raises(FastleafError, match="linear"):
        Schedule(sgd(), "linear")


@pytest.mark.parametrize("name", ["cosine", "plateau"])
def test_state_dict_round_trip_continues_identically(name):
    kwargs = dict(epochs=6, warmup_epochs=1, min_lr=MIN_LR, steps_per_epoch=3,
                  factor=0.5, patience=1)
    losses = [1.0, 1.0, 1.0, 0.5, 0.5, 0.5]

    def epoch(opt, sched, e):
        for _ in range(3):
            opt.step()
            sched.step_update()
        sched.step(e, losses[e - 1])
        return sched.lr

    opt = sgd()
    ref = Schedule(opt, name, **kwargs)
    ref_lrs = [epoch(opt, ref, e) for e in range(1, 7)]

    opt = sgd()
    first = Schedule(opt, name, **kwargs)
    for e in range(1, 4):
        epoch(opt, first, e)
    state = first.state_dict()
    assert state["updates"] == 9
    # a fresh optimizer and schedule, as after a restart from last.pt
    opt2 = sgd()
    opt2.load_state_dict(opt.state_dict())
    resumed = Schedule(opt2, name, **kwargs)
    resumed.load_state_dict(state)
    assert resumed.updates == 9
    assert resumed.lr == pytest.approx(ref_lrs[2])
    assert [epoch(opt2, resumed, e) for e in range(4, 7)] == pytest.approx(ref_lrs[3:])
    assert len(set(round(x, 12) for x in ref_lrs)) > 1   # the lr really moved
