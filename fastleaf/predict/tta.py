"""Test-time augmentation views: pure tensor functions on the device batch, after the loader.

``views(name)`` returns a callable ``images (B, 3, H, W) -> [view (B, 3, H, W), ...]``; the
first view is always the unchanged batch.  ``predict_logits(model, loader, precision,
views=views("flips"))`` averages the softmax over the views.

    none       1 view   the image as it is
    hflip      2 views  + horizontal mirror
    flips      4 views  + vertical mirror, + both (a 180° turn)
    rot90      8 views  the dihedral group: 4 quarter turns, each with and without a mirror
    five-crop  5 views  centre + four corner crops of ``crop_fraction`` of the side, resized back

Leaves have no natural orientation, so every flip and quarter turn is a plausible photo.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torchvision.transforms.v2 import functional as TF

from ..errors import UsageError
from ..vocab import TTA_NAMES
from . import DEFAULT_CROP_FRACTION

Views = Callable[[torch.Tensor], list[torch.Tensor]]
# (quarter turns, mirror) for each of the 8 dihedral views; (0, False) is the identity
DIHEDRAL = tuple((k, mirror) for k in range(4) for mirror in (False, True))


def _keep_format(view: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Give ``view`` the memory format of ``like`` (flips/turns may return odd strides)."""
    if like.dim() == 4 and like.is_contiguous(memory_format=torch.channels_last) \
            and not like.is_contiguous():
        return view.contiguous(memory_format=torch.channels_last)
    return view.contiguous()


def hflip(images: torch.Tensor) -> torch.Tensor:
    """Mirror left-right: ``(B, C, H, W)``, flips W."""
    return _keep_format(images.flip(-1), images)


def vflip(images: torch.Tensor) -> torch.Tensor:
    """Mirror top-bottom: ``(B, C, H, W)``, flips H."""
    return _keep_format(images.flip(-2), images)


def dihedral(images: torch.Tensor, turns: int, mirror: bool) -> torch.Tensor:
    """``turns`` counter-clockwise quarter turns, then a left-right mirror when ``mirror``."""
    out = torch.rot90(images, turns, dims=(-2, -1))
    if mirror:
        out = out.flip(-1)
    return _keep_format(out, images)


def undo_dihedral(view: torch.Tensor, turns: int, mirror: bool) -> torch.Tensor:
    """The inverse of :func:`dihedral`: mirror back first, then turn back."""
    out = view.flip(-1) if mirror else view
    return _keep_format(torch.rot90(out, -turns, dims=(-2, -1)), view)


def five_crop(images: torch.Tensor, fraction: float = DEFAULT_CROP_FRACTION) -> list[torch.Tensor]:
    """Centre + four corner crops of ``fraction`` of each side, resized back to ``(H, W)``.

    Returns five ``(B, C, H, W)`` batches, the centre crop first.
    """
    if not 0.0 < fraction <= 1.0:
        raise UsageError(f"crop fraction must be in (0, 1], got {fraction}")
    height, width = images.shape[-2:]
    crop = [max(1, round(height * fraction)), max(1, round(width * fraction))]
    top_left, top_right, bottom_left, bottom_right, centre = TF.five_crop(images, crop)
    out = []
    for view in (centre, top_left, top_right, bottom_left, bottom_right):
        # bilinear + antialias, as the eval loaders resize; linear, so it commutes with the
        # per-channel normalisation already applied by the loader
        resized = F.interpolate(view, size=(height, width), mode="bilinear",
                                align_corners=False, antialias=True)
        out.append(_keep_format(resized, images))
    return out


def views(name: str, crop_fraction: float = DEFAULT_CROP_FRACTION) -> Views:
    """The view function for a TTA name (see the module docstring)."""
    if name == "none":
        return lambda images: [images]
    if name == "hflip":
        return lambda images: [images, hflip(images)]
    if name == "flips":
        return lambda images: [images, hflip(images), vflip(images), vflip(hflip(images))]
    if name == "rot90":
        return lambda images: [dihedral(images, k, m) for k, m in DIHEDRAL]
    if name == "five-crop":
        if not 0.0 < crop_fraction <= 1.0:
            raise UsageError(f"crop fraction must be in (0, 1], got {crop_fraction}")
        return lambda images: five_crop(images, crop_fraction)
    raise UsageError(f"unknown TTA {name!r}; choose from {', '.join(TTA_NAMES)}")


def view_count(name: str) -> int:
    """How many forward passes per image a TTA name costs."""
    return {"none": 1, "hflip": 2, "flips": 4, "rot90": 8, "five-crop": 5}[name]
