"""Batched augmentations on a device batch, translating the same :class:`AugmentSpec`.

The cache backends keep decoded uint8 images and build each training view on the device,
one random draw per image::

    augment = BatchAugment(spec)
    g = torch.Generator(device).manual_seed(0)
    host = torch.Generator().manual_seed(0)   # per-batch choices (on the CPU: may be g itself)
    views = augment(images_uint8, g, host)  # (B, 3, S, S) float in 0..255 units
    batch = normalise(views, mean, std)     # mean/std from ``norm_tensors``

Random resized crop, flips, rotation and shift-scale are folded into ONE affine warp per image
(``F.affine_grid`` + ``F.grid_sample``, bilinear), so each view is interpolated once; the order
of the torchvision backend is kept: crop -> flips -> affine (zero fill) -> brightness/contrast.

Nothing here waits for the GPU: per-image draws stay on the device, the one per-batch choice
comes from a host generator, and no tensor is copied from the host per batch.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .augment import AugmentSpec

CROP_TRIES = 10   # as torchvision's RandomResizedCrop: first valid box of 10 draws
LUMA = (0.2989, 0.587, 0.114)   # ITU-R 601-2, as torchvision's grayscale


def uniform(n: int, low: float, high: float, g: torch.Generator, device) -> torch.Tensor:
    """``(n,)`` float32 drawn uniformly from [low, high)."""
    return torch.rand(n, generator=g, device=device) * (high - low) + low


def crop_boxes(n: int, spec: AugmentSpec, g: torch.Generator, device) -> torch.Tensor:
    """Random resized crop boxes ``(n, 4)``: centre x, centre y, width, height (fractions).

    Area fraction from ``spec.crop_scale``, log-uniform aspect from ``spec.crop_ratio``; a draw
    that does not fit the image is retried, and after ``CROP_TRIES`` the whole image is used.
    """
    area = uniform(n * CROP_TRIES, *spec.crop_scale, g, device).view(n, CROP_TRIES)
    log_lo, log_hi = math.log(spec.crop_ratio[0]), math.log(spec.crop_ratio[1])
    ratio = uniform(n * CROP_TRIES, log_lo, log_hi, g, device).exp().view(n, CROP_TRIES)
    w, h = (area * ratio).sqrt(), (area / ratio).sqrt()
    fits = (w <= 1) & (h <= 1)
    pick = fits.float().argmax(1, keepdim=True)     # first fitting try (0 when none fits)
    ok = fits.any(1)
    w = torch.where(ok, w.gather(1, pick)[:, 0], torch.ones(n, device=device))
    h = torch.where(ok, h.gather(1, pick)[:, 0], torch.ones(n, device=device))
    # the box's top-left corner is uniform over the positions that keep it inside the image
    cx = (uniform(n, 0, 1, g, device) * (1 - w) + w / 2) * 2 - 1
    cy = (uniform(n, 0, 1, g, device) * (1 - h) + h / 2) * 2 - 1
    return torch.stack([cx, cy, w, h], dim=1)


def inverse_affine(n: int, spec: AugmentSpec, g: torch.Generator, device) -> torch.Tensor:
    """``(n, 2, 3)`` maps from output to input coordinates of a random rotate + shift-scale.

    Forward map ``p = s R(a) q + t`` (rotation about the centre, zoom ``s``, shift ``t`` as a
    fraction of the side); ``affine_grid`` needs its inverse ``q = R(-a) (p - t) / s``.
    """
    angle = uniform(n, -spec.rotate_deg, spec.rotate_deg, g, device) * (math.pi / 180)
    zoom = uniform(n, 1 - spec.scale, 1 + spec.scale, g, device)
    # normalised coordinates span 2 units per side, so a shift of f sides is 2f units
    shift = uniform(2 * n, -spec.shift, spec.shift, g, device).view(n, 2) * 2
    cos, sin = angle.cos() / zoom, angle.sin() / zoom
    m = torch.stack([torch.stack([cos, sin], 1), torch.stack([-sin, cos], 1)], 1)   # (n, 2, 2)
    offset = -(m @ shift.unsqueeze(2))                                              # (n, 2, 1)
    return torch.cat([m, offset], dim=2)


def affine_coords(theta: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """``theta`` ``(B, 2, 3)`` applied to the pixel centres: ``(B, H, W, 2)`` (x, y).

    The same numbers as ``F.affine_grid(theta, align_corners=False)``, built from one
    broadcast of a row and a column instead of a batched matmul (several times faster on CPU).
    """
    xs = torch.linspace(-1 + 1 / w, 1 - 1 / w, w, device=theta.device)
    ys = torch.linspace(-1 + 1 / h, 1 - 1 / h, h, device=theta.device)
    t = theta.transpose(1, 2).unsqueeze(1)                                # (B, 1, 3, 2)
    row = xs.view(1, w, 1) * t[:, :, 0] + t[:, :, 2]                      # (B, W, 2)
    col = ys.view(1, h, 1) * t[:, :, 1]                                   # (B, H, 2)
    return row.unsqueeze(1) + col.unsqueeze(2)                            # (B, H, W, 2)


def flip_signs(n: int, p: float, g: torch.Generator, device) -> torch.Tensor:
    """``(n,)`` of -1 (flip, with probability ``p``) or +1."""
    if p <= 0:
        return torch.ones(n, device=device)
    return torch.where(torch.rand(n, generator=g, device=device) < p, -1.0, 1.0)


def adjust_brightness(x: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    """Scale each image ``(B, 3, H, W)`` (0..255 float) by its factor ``(B,)``, clamped."""
    return x.mul_(factors.view(-1, 1, 1, 1)).clamp_(0, 255)


def adjust_contrast(x: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    """Blend each image with the mean of its grayscale (ITU-R 601-2 luma, as torchvision)."""
    # the mean of the grey image is the luma-weighted mean of the channel means: no grey copy
    # (weights as Python numbers: a tensor of them would be a host->device copy per batch)
    channel = x.mean((2, 3))                                    # (B, 3)
    mean = (channel[:, 0] * LUMA[0] + channel[:, 1] * LUMA[1]
            + channel[:, 2] * LUMA[2]).view(-1, 1, 1, 1)        # (B, 1, 1, 1)
    f = factors.view(-1, 1, 1, 1).to(x.dtype)
    return x.mul_(f).add_(mean * (1 - f)).clamp_(0, 255)


def flip_batch(x: torch.Tensor, hsign: torch.Tensor, vsign: torch.Tensor) -> torch.Tensor:
    """Exact flips, no interpolation: images with sign -1 are mirrored (``x`` is overwritten).

    ``torch.where`` over the whole batch: selecting the chosen images first would need their
    count on the host, a wait for the GPU on every batch.
    """
    for sign, dim in ((hsign, 3), (vsign, 2)):
        flip = (sign < 0).view(-1, 1, 1, 1)
        x.copy_(torch.where(flip, x.flip(dim), x))
    return x


class BatchAugment:
    """Random training views of a batch ``(B, 3, S, S)`` as ``spec`` describes them.

    Args:
        spec: the augmentation description; ``spec.train=False`` gives the identity.
    Returns (on call): float32 ``(B, 3, S, S)`` in 0..255 units, not yet normalised.
    """

    def __init__(self, spec: AugmentSpec):
        self.spec = spec
        self.warps = spec.train and (spec.random_crop or spec.rotate_deg > 0 or spec.affine)
        self.flips = spec.train and (spec.hflip > 0 or spec.vflip > 0)
        self.colour = spec.train and (spec.brightness > 0 or spec.contrast > 0)

    @property
    def identity(self) -> bool:
        """Nothing random to do: callers may skip the call."""
        return not (self.warps or self.flips or self.colour)

    def __call__(self, images: torch.Tensor, g: torch.Generator,
                 host: torch.Generator | None = None) -> torch.Tensor:
        """``g`` draws per image on the images' device; ``host`` (a CPU generator, default
        ``g`` when that is one) draws the per-batch choices."""
        n, device = images.shape[0], images.device
        if host is None:
            if g.device.type != "cpu":
                raise ValueError("BatchAugment on a GPU needs a host (CPU) generator too")
            host = g
        if self.warps:
            x = self.warp(images.float(), g)
        elif self.flips:
            # flip the uint8 copy (a quarter of the bytes), then convert
            x = flip_batch(images.clone(), flip_signs(n, self.spec.hflip, g, device),
                           flip_signs(n, self.spec.vflip, g, device)).float()
        else:
            x = images.to(torch.float32, copy=True)     # the caller's batch is never modified
        if self.colour:
            x = self.jitter(x, g, host)
        return x

    def warp(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """One bilinear resample per image: crop box, flips and affine composed."""
        spec, (n, _, h, w), device = self.spec, x.shape, x.device
        if spec.random_crop:
            box = crop_boxes(n, spec, g, device)
        else:   # the whole image: centre (0, 0), size (1, 1); filled on the device
            box = torch.zeros(n, 4, device=device)
            box[:, 2:] = 1.0
        hsign = flip_signs(n, spec.hflip, g, device)
        vsign = flip_signs(n, spec.vflip, g, device)
        has_affine = spec.rotate_deg > 0 or spec.affine
        if has_affine:
            theta = inverse_affine(n, spec, g, device)
        else:
            theta = torch.eye(2, 3, device=device).expand(n, 2, 3)
        # q: where each output pixel lies in the (flipped) crop, inside it when in [-1, 1]
        q = affine_coords(theta, h, w)                                      # (B, H, W, 2)
        scale = torch.stack([hsign * box[:, 2], vsign * box[:, 3]], 1).view(n, 1, 1, 2)
        grid = torch.addcmul(box[:, :2].reshape(n, 1, 1, 2), q, scale)
        out = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros",
                            align_corners=False)
        if has_affine and spec.random_crop:
            # RandomAffine fills with black what falls outside the crop
            out.mul_((q.abs().amax(-1) <= 1).unsqueeze(1))                  # (B, 1, H, W)
        return out

    def jitter(self, x: torch.Tensor, g: torch.Generator, host: torch.Generator) -> torch.Tensor:
        """Brightness and contrast, in a random order per batch (ColorJitter draws one per call)."""
        spec, n, device = self.spec, x.shape[0], x.device
        b = uniform(n, 1 - spec.brightness, 1 + spec.brightness, g, device)
        c = uniform(n, 1 - spec.contrast, 1 + spec.contrast, g, device)
        contrast_first = bool(torch.rand(1, generator=host) < 0.5)
        if contrast_first and spec.contrast:
            x = adjust_contrast(x, c)
        if spec.brightness:
            x = adjust_brightness(x, b)
        if not contrast_first and spec.contrast:
            x = adjust_contrast(x, c)
        return x


def normalise(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, *,
              channels_last: bool = False, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """uint8 or 0..255 float ``(B, 3, H, W)`` -> ``(x - mean) / std`` in the model's layout.

    ``mean``/``std`` are ``(1, 3, 1, 1)`` in 0..255 units (``loaders.base.norm_tensors``).  One
    fused ``x * (1 / std) - mean / std`` pass does the uint8 -> float conversion too, and writes
    straight into a tensor of the model's dtype and memory format: no extra layout or cast pass.
    """
    scale, shift = 1.0 / std, -mean / std
    b, c, h, w = x.shape
    layout = torch.channels_last if channels_last else torch.contiguous_format
    out = torch.empty((b, c, h, w), dtype=dtype, device=x.device, memory_format=layout)
    if c > 1 and channels_last and x.is_contiguous(memory_format=torch.channels_last) \
            and not x.is_contiguous():
        # NHWC in and out: channels are the innermost axis, and broadcasting a size-3 axis there
        # is slow on the CPU; as rows (B, H, W*C) against a repeated (W*C,) pattern it vectorises
        rows = x.permute(0, 2, 3, 1).reshape(b, h, w * c)
        torch.addcmul(shift.view(c).repeat(w), rows, scale.view(c).repeat(w),
                      out=out.permute(0, 2, 3, 1).view(b, h, w * c))
    else:
        torch.addcmul(shift, x, scale, out=out)
    return out
