"""CutMix and MixUp on the device batch, after any loader backend.

    mixer = create_mixer(cutmix_alpha=1.0, mixup_alpha=0.0, prob=1.0, num_classes=176)
    images, targets = mixer(images, labels)   # (B, 3, H, W), (B, classes) rows summing to 1

Each batch is mixed (with probability ``prob``) with itself reversed, so image ``i`` pairs with
image ``B - 1 - i``; an odd batch's middle image pairs with itself and stays whole, which keeps
every batch size legal (timm's ``Mixup`` needs an even batch).  One ``lambda ~ Beta(a, a)`` per
batch; for CutMix it is corrected to the area actually pasted after clipping the box.
Evaluation never mixes: metrics stay on hard labels.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from ..errors import UsageError


def soft_targets(labels: torch.Tensor, num_classes: int, smoothing: float = 0.0) -> torch.Tensor:
    """Smoothed one-hot targets ``(B, classes)`` float32."""
    off = smoothing / num_classes
    return F.one_hot(labels, num_classes).float() * (1.0 - smoothing) + off


def cutmix_box(height: int, width: int, lam: float, rng: np.random.Generator):
    """A box covering about ``1 - lam`` of the image, centred uniformly, clipped to the image.

    Returns:
        (y0, y1, x0, x1) pixel bounds.
    """
    cut = math.sqrt(1.0 - lam)
    cut_h, cut_w = int(height * cut), int(width * cut)
    cy, cx = int(rng.integers(height)), int(rng.integers(width))
    y0, y1 = max(cy - cut_h // 2, 0), min(cy + cut_h // 2, height)
    x0, x1 = max(cx - cut_w // 2, 0), min(cx + cut_w // 2, width)
    return y0, y1, x0, x1


class Mixer:
    """Callable ``(images, labels) -> (images, soft targets)``; see the module docstring."""

    def __init__(self, cutmix_alpha: float, mixup_alpha: float, prob: float, num_classes: int,
                 label_smoothing: float = 0.0, seed: int | None = None):
        self.cutmix_alpha, self.mixup_alpha = cutmix_alpha, mixup_alpha
        self.prob, self.num_classes, self.smoothing = prob, num_classes, label_smoothing
        # host-side draws: no device sync per batch
        self.rng = np.random.default_rng(seed)
        self.last = ("none", 1.0)   # (mode, lambda) of the latest batch, for tests and logs

    def choose(self) -> tuple[str, float]:
        """(mode, lambda) for one batch: ``none``, ``cutmix`` or ``mixup``."""
        if self.rng.random() >= self.prob:
            return "none", 1.0
        if self.cutmix_alpha > 0 and self.mixup_alpha > 0:
            mode = "cutmix" if self.rng.random() < 0.5 else "mixup"
        else:
            mode = "cutmix" if self.cutmix_alpha > 0 else "mixup"
        alpha = self.cutmix_alpha if mode == "cutmix" else self.mixup_alpha
        return mode, float(self.rng.beta(alpha, alpha))

    def __call__(self, images: torch.Tensor, labels: torch.Tensor):
        """Mix ``images`` ``(B, 3, H, W)`` (memory format and dtype kept) with their reverse.

        Returns:
            (mixed images, float32 targets ``(B, classes)``).
        """
        mode, lam = self.choose()
        partner = images.flip(0)              # a copy: in-place pasting below is safe
        if mode == "cutmix":
            height, width = images.shape[-2:]
            y0, y1, x0, x1 = cutmix_box(height, width, lam, self.rng)
            images = images.clone(memory_format=torch.preserve_format)
            images[..., y0:y1, x0:x1] = partner[..., y0:y1, x0:x1]
            lam = 1.0 - (y1 - y0) * (x1 - x0) / float(height * width)
        elif mode == "mixup":
            images = images * lam + partner * (1.0 - lam)
        self.last = (mode, lam)
        targets = soft_targets(labels, self.num_classes, self.smoothing)
        return images, targets * lam + targets.flip(0) * (1.0 - lam)


def create_mixer(cutmix_alpha: float, mixup_alpha: float, prob: float, num_classes: int,
                 label_smoothing: float = 0.0, seed: int | None = None) -> Mixer | None:
    """A :class:`Mixer`, or None when both alphas are 0 (plain hard-label training).

    Args:
        cutmix_alpha, mixup_alpha: Beta(alpha, alpha) parameters; 0 turns that mode off.
            With both on, each mixed batch picks one of the two with equal odds.
        prob: chance that a batch is mixed at all.
        num_classes: width of the soft targets.
        label_smoothing: applied to both one-hot targets before mixing.
        seed: seeds lambda and box draws.
    """
    if cutmix_alpha < 0 or mixup_alpha < 0:
        raise UsageError(f"cutmix/mixup alphas must be >= 0, got {cutmix_alpha}, {mixup_alpha}")
    if not 0.0 <= prob <= 1.0:
        raise UsageError(f"mix probability must be in [0, 1], got {prob}")
    if not 0.0 <= label_smoothing < 1.0:
        raise UsageError(f"label smoothing must be in [0, 1), got {label_smoothing}")
    if cutmix_alpha == 0 and mixup_alpha == 0:
        return None
    return Mixer(cutmix_alpha, mixup_alpha, prob, num_classes, label_smoothing, seed)
