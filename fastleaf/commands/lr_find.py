"""``fastleaf lr-find``: the learning-rate range test for a training configuration.

    fastleaf lr-find --data DIR --model cnn --out runs/lr-cnn
    fastleaf lr-find --data DIR --config finetune --model tf_efficientnet_lite0 --pretrained
"""
from __future__ import annotations

import argparse

NAME = "lr-find"
HELP = "sweep the learning rate on a few hundred steps and suggest one (Smith 2015)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    # the training flags, so the sweep runs exactly what `fastleaf train` would run
    from .train import add_arguments as add_train_arguments

    add_train_arguments(p)
    g = p.add_argument_group("range test")
    g.add_argument("--lr-start", type=float, default=1e-7, help="first learning rate (1e-7)")
    g.add_argument("--lr-end", type=float, default=10.0, help="last learning rate (10)")
    g.add_argument("--lr-steps", type=int, default=100, help="optimizer steps at most (100)")


def run(args: argparse.Namespace) -> int:
    from ..errors import UsageError
    from ..train.lr_search import lr_range_test
    from ..utils.console import console
    from .train import config_from_args

    if args.lr_steps < 10 or not 0 < args.lr_start < args.lr_end:
        raise UsageError("lr-find needs --lr-steps >= 10 and 0 < --lr-start < --lr-end")
    cfg = config_from_args(args)
    search = lr_range_test(cfg, args.out or "runs/lr-find", steps=args.lr_steps,
                           start=args.lr_start, end=args.lr_end)
    result = search.result
    console.print(f"{len(result.lrs)} steps, {result.stopped}")
    if search.plot is not None:
        console.print(f"wrote {search.plot}", soft_wrap=True)
    if result.suggestion is None:
        console.print("[yellow]too few steps before the loss diverged to suggest a learning "
                      "rate: lower --lr-start or raise --lr-steps[/yellow]")
        return 1
    console.print(f"suggested learning rate: {result.suggestion:.3g} (the recipe's: "
                  f"{search.config.lr:g})")
    return 0
