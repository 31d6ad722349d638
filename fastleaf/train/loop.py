"""One training epoch, one evaluation pass and batched prediction.

These see only the loader contract ``(images, labels)`` on the device: no backend branches.
``.item()`` is called once per logged step interval, not per step, to avoid host syncs.
"""
from __future__ import annotations

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


def soft_target_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy against a probability target ``(B, classes)`` (CutMix / MixUp)."""
    return torch.sum(-targets * F.log_softmax(logits.float(), dim=-1), dim=-1).mean()


def train_one_epoch(model: nn.Module, loader, optimizer: torch.optim.Optimizer,
                    precision: Precision, loss_fn: nn.Module, *,
                    mixer: Callable | None = None, grad_clip: float = 0.0,
                    on_step: Callable[[int, int, float], None] | None = None,
                    should_stop: Callable[[], bool] | None = None,
                    after_step: Callable[[], None] | None = None) -> EpochStats:
    """Train over ``loader`` once.  ``on_step(batches_done, images_done, loss)`` feeds progress;
    ``after_step()`` runs after every optimizer step (per-iteration schedule, weight EMA)."""
    model.train()
    device = next(model.parameters()).device
    running = torch.zeros((), device=device)
    count = seen = 0
    start = time.perf_counter()
    for step, (images, labels) in enumerate(loader, 1):
        if mixer is not None:
            images, targets = mixer(images, labels)
        with precision.autocast():
            logits = model(images)
            loss = soft_target_loss(logits, targets) if mixer is not None \
                else loss_fn(logits.float(), labels)
        optimizer.zero_grad(set_to_none=True)
        scaler = precision.scaler
        if scaler is not None:
            scaler.scale(loss).backward()
            if grad_clip:
                scaler.unscale_(optimizer)           # clip the true gradients, not scaled ones
                nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            if grad_clip:
                nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            optimizer.step()
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
