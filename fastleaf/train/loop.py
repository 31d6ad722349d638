"""One training epoch, one evaluation pass and batched prediction.

These see only the loader contract ``(images, labels)`` on the device: no backend branches.
``.item()`` is called once per logged step interval, not per step, to avoid host syncs.
"""
from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import FastleafError
from ..utils.device import synchronize
from .precision import Precision

SYNC_EVERY = 10   # steps between progress updates (each one syncs the device)


@dataclass
class EpochStats:
    loss: float
    images: int
    seconds: float

    @property
    def img_per_s(self) -> float:
        return self.images / max(self.seconds, 1e-9)


class DivergedError(FastleafError, ArithmeticError):
    """The loss or the weights stopped being finite numbers: nothing is learnt from there on."""


def check_finite(model: nn.Module, loss: float, epoch: int, hint: str) -> None:
    """Refuse an epoch whose mean loss or weights hold nan or inf, before anything saves them
    (their argmax still scores a finite accuracy, which could make them "best")."""
    broken = not math.isfinite(loss) or not all(
        bool(torch.isfinite(p).all()) for p in model.parameters() if p.is_floating_point())
    if broken:
        raise DivergedError(f"epoch {epoch}: the training loss ({loss:.4g}) or the weights are "
                            f"not finite; the run diverged and this epoch is not saved. {hint}")


def soft_target_loss(logits: torch.Tensor, targets: torch.Tensor,
                     weight: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy against a probability target ``(B, classes)`` (CutMix / MixUp), each
    class's term scaled by ``weight`` when given (as ``nn.CrossEntropyLoss`` weighs it)."""
    terms = -targets * F.log_softmax(logits.float(), dim=-1)
    if weight is not None:
        terms = terms * weight
    return torch.sum(terms, dim=-1).mean()


def optimizer_step(model: nn.Module, optimizer: torch.optim.Optimizer, precision: Precision,
                   grad_clip: float) -> None:
    """Clip (the true gradients, unscaled first under fp16) and step; one path for both."""
    scaler = precision.scaler
    if grad_clip:
        if scaler is not None:
            scaler.unscale_(optimizer)
        nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def accumulation_groups(batches: int, accum: int):
    """For each micro-batch (1-based step): the size of its group and whether it closes it.

    The last group of an epoch may be short; its losses are averaged over its own size, so a
    group of N micro-batches of b images always gives the gradient of one batch of N*b.
    """
    for step in range(1, batches + 1):
        start = (step - 1) // accum * accum
        size = min(accum, batches - start)
        yield size, step == start + size


def train_one_epoch(model: nn.Module, loader, optimizer: torch.optim.Optimizer,
                    precision: Precision, loss_fn: nn.Module, *,
                    mixer: Callable | None = None, grad_clip: float = 0.0, accum: int = 1,
                    on_step: Callable[[int, int, float], None] | None = None,
                    should_stop: Callable[[], bool] | None = None,
                    after_step: Callable[[], None] | None = None) -> EpochStats:
    """Train over ``loader`` once.  ``on_step(batches_done, images_done, loss)`` feeds progress;
    ``after_step()`` runs after every optimizer step (per-iteration schedule, weight EMA).

    ``accum``: micro-batches per optimizer step (gradient accumulation); DDP all-reduces only
    on the last micro-batch of each step (``no_sync`` before it).
    """
    model.train()
    device = next(model.parameters()).device
    running = torch.zeros((), device=device)
    count = seen = 0
    start = time.perf_counter()
    optimizer.zero_grad(set_to_none=True)
    groups = accumulation_groups(len(loader), max(1, accum))
    for step, ((images, labels), (size, closes)) in enumerate(zip(loader, groups), 1):
        if mixer is not None:
            images, targets = mixer(images, labels)
        # DDP: gradients are all-reduced once per optimizer step, on the micro-batch closing it
        sync = contextlib.nullcontext() if closes or not hasattr(model, "no_sync") \
            else model.no_sync()
        with sync:
            with precision.autocast():
                logits = model(images)
                loss = soft_target_loss(logits, targets, getattr(loss_fn, "weight", None)) \
                    if mixer is not None \
                    else loss_fn(logits.float(), labels)
            scaled = loss / size if size > 1 else loss
            if precision.scaler is not None:
                precision.scaler.scale(scaled).backward()
            else:
                scaled.backward()
        if closes:
            optimizer_step(model, optimizer, precision, grad_clip)
            if after_step is not None:
                after_step()
        running += loss.detach() * len(labels)
        count += len(labels)
        seen += len(labels)
        if on_step is not None and (step % SYNC_EVERY == 0 or step == len(loader)):
            on_step(step, seen, float(running) / count)
        if should_stop is not None and should_stop():
            break
    synchronize(device)
    return EpochStats(float(running) / max(count, 1), seen, time.perf_counter() - start)


@torch.no_grad()
def predict_logits(model: nn.Module, loader, precision: Precision,
                   views: Callable | None = None) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Logits ``(N, classes)`` (float32, on the CPU) and labels ``(N,)`` in loader order.

    ``views(images) -> list of image batches`` averages softmax over test-time views; without it
    the raw logits are returned.
    """
    model.eval()
    device = next(model.parameters()).device
    outputs, labels_out, images_done = [], [], 0
    start = time.perf_counter()
    for images, labels in loader:
        with precision.autocast():
            if views is None:
                out = model(images).float()
            else:
                probs = [model(v).float().softmax(-1) for v in views(images)]
                out = torch.stack(probs).mean(0).log()   # log of mean probability
        outputs.append(out)
        labels_out.append(labels)
        images_done += len(labels)
    synchronize(device)
    seconds = time.perf_counter() - start
    if not outputs:
        raise ValueError("the loader yielded no batches")
    return (torch.cat(outputs).cpu(), torch.cat(labels_out).cpu(),
            images_done / max(seconds, 1e-9))


def evaluate(model: nn.Module, loader, precision: Precision, loss_fn: nn.Module):
    """(mean loss, predicted ids, true ids, img/s) over every row of ``loader`` once."""
    logits, labels, rate = predict_logits(model, loader, precision)
    loss = float(loss_fn(logits, labels))
    return loss, logits.argmax(-1).numpy(), labels.numpy(), rate
