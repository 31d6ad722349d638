"""Batched augmentations on a device batch, translating the same :class:`AugmentSpec`.

The cache backends keep decoded uint8 images and build each training view on the device,
one random draw per image::

    augment = BatchAugment(spec)
    g = torch.Generator(device).manual_seed(0)
    views = augment(images_uint8, g)        # (B, 3, S, S) float in 0..255 units
    batch = Normaliser(mean, std)(views)    # mean/std from ``norm_tensors``

Random resized crop, flips, rotation and shift-scale are folded into ONE affine warp per image
(``F.grid_sample``, bilinear), so each view is interpolated once; the order of the other
backends is kept: crop -> flips -> affine (zero fill) -> brightness/contrast, and brightness
and contrast are one blend ``b * (c x + (1 - c) m)`` about the grey mean ``m``, as the OpenCV
lookup table and DALI's graph compute it.

At the paper's batch of 50 a GPU spends as long launching these small kernels as running them,
so the launch count per batch is kept low (``benchmarks/launch_count.py`` counts it): every
random number of a batch comes from one draw, scaled to its range by one ``addcmul`` against
ranges laid out once per spec (:class:`DrawPlan`); normalising is one ``addcmul`` with its
constants precomputed (:class:`Normaliser`).  Nothing here waits for the GPU: draws stay on the
device and no tensor is copied from the host per batch.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .augment import AugmentSpec

CROP_TRIES = 10   # as torchvision's RandomResizedCrop: first valid box of 10 draws
LUMA = (0.2989, 0.587, 0.114)   # ITU-R 601-2, as torchvision's grayscale


class DrawPlan:
    """Where each per-image random number of a batch lies in one ``(B, K)`` draw.

    ``columns[name] = slice`` of the block; ``low``/``span`` map ``rand`` in [0, 1) to each
    column's range, so a batch's draws are ``low + rand(B, K) * span``: two launches in all.
    """

    def __init__(self, spec: AugmentSpec):
        # the spec's one derived view, as every backend reads it (the identity when not training)
        d = spec.draws()
        self.columns: dict[str, slice] = {}
        self.lows: list[float] = []
        self.spans: list[float] = []
        if d.random_crop:
            self.add("area", CROP_TRIES, *d.crop_scale)
            self.add("log_ratio", CROP_TRIES, *(math.log(r) for r in d.crop_ratio))
            self.add("corner", 2, 0.0, 1.0)
        for name, p in (("hflip", d.hflip), ("vflip", d.vflip)):
            if p > 0:
                self.add(name, 1, 0.0, 1.0)
        if d.affine:
            self.add("angle", 1, *(math.radians(a) for a in d.angle))
            self.add("zoom", 1, *d.zoom)
            # normalised coordinates span 2 units per side, so a shift of f sides is 2f units
            self.add("shift", 2, *(2 * f for f in d.shift))
        if d.colour:
            self.add("brightness", 1, *d.brightness)
            self.add("contrast", 1, *d.contrast)
        self.cached: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}

    def add(self, name: str, width: int, low: float, high: float) -> None:
        start = len(self.lows)
        self.columns[name] = slice(start, start + width)
        self.lows += [low] * width
        self.spans += [high - low] * width

    def __len__(self) -> int:
        return len(self.lows)

    def draw(self, n: int, g: torch.Generator, device) -> dict[str, torch.Tensor]:
        """Every column for ``n`` images: ``(n, width)`` each, ``(n,)`` for width 1."""
        device = torch.device(device)
        if device not in self.cached:       # once per device: no host copy per batch
            self.cached[device] = (torch.tensor(self.lows, device=device),
                                   torch.tensor(self.spans, device=device))
        low, span = self.cached[device]
        block = torch.addcmul(low, torch.rand(n, len(self), generator=g, device=device), span)
        return {name: block[:, cols] if cols.stop - cols.start > 1 else block[:, cols.start]
                for name, cols in self.columns.items()}


def crop_boxes(area: torch.Tensor, log_ratio: torch.Tensor, corner: torch.Tensor) -> torch.Tensor:
    """Random resized crop boxes ``(n, 4)``: centre x, centre y, width, height (in [-1, 1]
    coordinates for the centre, fractions of the side for the size).

    ``area``/``log_ratio``: ``(n, CROP_TRIES)`` tries; the first that fits the image is taken,
    and when none fits, the whole image.  ``corner``: ``(n, 2)`` in [0, 1), where the box's
    top-left corner lies among the positions that keep it inside the image.
    """
    ratio = log_ratio.exp()
    w, h = (area * ratio).sqrt(), (area / ratio).sqrt()
    fits = (w <= 1) & (h <= 1)
    pick = fits.float().argmax(1, keepdim=True)     # first fitting try (0 when none fits)
    size = torch.stack([w.gather(1, pick)[:, 0], h.gather(1, pick)[:, 0]], 1)     # (n, 2)
    size = torch.where(fits.any(1, keepdim=True), size, 1.0)
    centre = (corner * (1 - size) + size / 2) * 2 - 1
    return torch.cat([centre, size], dim=1)


def inverse_affine(angle: torch.Tensor, zoom: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """``(n, 2, 3)`` maps from output to input coordinates of a rotate + shift-scale.

    Forward map ``p = s R(a) q + t`` (rotation about the centre by ``angle`` radians, zoom ``s``,
    shift ``t`` ``(n, 2)`` in normalised units); ``grid_sample`` needs its inverse
    ``q = R(-a) (p - t) / s``.
    """
    cos, sin = angle.cos() / zoom, angle.sin() / zoom
    m = torch.stack([cos, sin, -sin, cos], 1).view(-1, 2, 2)                     # (n, 2, 2)
    offset = -(m @ shift.unsqueeze(2))                                          # (n, 2, 1)
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


def flip_signs(u: torch.Tensor | None, p: float) -> torch.Tensor | float:
    """-1 (a mirror) where the uniform draw ``u`` ``(n,)`` is below ``p``, else +1."""
    if u is None or p <= 0:
        return 1.0
    return torch.where(u < p, -1.0, 1.0)


LUMA_WEIGHTS: dict[tuple, torch.Tensor] = {}


def luma_weights(device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """``(3,)`` luma weights on ``device``, copied there once (a copy per batch from pageable
    host memory would make the host wait for the GPU)."""
    key = (device, dtype)
    if key not in LUMA_WEIGHTS:
        LUMA_WEIGHTS[key] = torch.tensor(LUMA, device=device, dtype=dtype)
    return LUMA_WEIGHTS[key]


def blend_colour(x: torch.Tensor, brightness: torch.Tensor, contrast: torch.Tensor) -> torch.Tensor:
    """``b * (c x + (1 - c) m)`` per image, clamped to 0..255 (``x`` is overwritten).

    ``m`` is the image's mean grey (ITU-R 601-2 luma, as torchvision), taken from the channel
    means: no grey copy.  One gain and one offset per image, so the blend is one ``addcmul``.
    """
    n = x.shape[0]
    grey = x.mean((2, 3)) @ luma_weights(x.device, x.dtype)                 # (B,)
    gain = (brightness * contrast).to(x.dtype).view(n, 1, 1, 1)
    offset = (brightness * (1 - contrast) * grey).to(x.dtype).view(n, 1, 1, 1)
    return torch.addcmul(offset, x, gain, out=x).clamp_(0, 255)


def flip_batch(x: torch.Tensor, hsign, vsign) -> torch.Tensor:
    """Exact flips, no interpolation: images with sign -1 are mirrored (a new tensor).

    ``torch.where`` over the whole batch: selecting the chosen images first would need their
    count on the host, a wait for the GPU on every batch.
    """
    for sign, dim in ((hsign, 3), (vsign, 2)):
        if isinstance(sign, torch.Tensor):
            x = torch.where((sign < 0).view(-1, 1, 1, 1), x.flip(dim), x)
    return x


def flip_pairs(n: int, hsign, vsign, device) -> torch.Tensor | None:
    """``(n, 2)`` mirror signs (x, y) for the warp; None when nothing is mirrored.  A constant
    axis is filled on the device (``torch.ones``), never copied from the host."""
    if not isinstance(hsign, torch.Tensor) and not isinstance(vsign, torch.Tensor):
        return None
    ones = torch.ones(n, device=device)
    return torch.stack([hsign if isinstance(hsign, torch.Tensor) else ones,
                        vsign if isinstance(vsign, torch.Tensor) else ones], 1)


class BatchAugment:
    """Random training views of a batch ``(B, 3, S, S)`` as ``spec`` describes them.

    Args:
        spec: the augmentation description; ``spec.train=False`` gives the identity.
    Returns (on call): float32 ``(B, 3, S, S)`` in 0..255 units, not yet normalised.
    """

    def __init__(self, spec: AugmentSpec):
        self.draws = d = spec.draws()
        self.plan = DrawPlan(spec)
        # what each view needs, in the draws' own terms (as every other backend reads them)
        self.warps = d.random_crop or d.affine
        self.flips = d.hflip > 0 or d.vflip > 0
        self.colour = d.colour

    @property
    def identity(self) -> bool:
        """Nothing random to do: callers may skip the call."""
        return not (self.warps or self.flips or self.colour)

    def __call__(self, images: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """``g`` draws every per-image number on the images' device; the caller's batch is
        never modified."""
        n = images.shape[0]
        d = self.plan.draw(n, g, images.device) if len(self.plan) else {}
        hsign = flip_signs(d.get("hflip"), self.draws.hflip)
        vsign = flip_signs(d.get("vflip"), self.draws.vflip)
        if self.warps:
            x = self.warp(images.float(), d, hsign, vsign)
        elif self.flips:
            # flip the uint8 batch (a quarter of the bytes), then convert
            x = flip_batch(images, hsign, vsign).float()
        else:
            x = images.to(torch.float32, copy=True)
        if self.colour:
            x = blend_colour(x, d["brightness"], d["contrast"])
        return x

    def warp(self, x: torch.Tensor, d: dict, hsign, vsign) -> torch.Tensor:
        """One bilinear resample per image: crop box, flips and affine composed."""
        (n, _, h, w), device = x.shape, x.device
        has_affine = "angle" in d
        theta = inverse_affine(d["angle"], d["zoom"], d["shift"]) if has_affine \
            else torch.eye(2, 3, device=device).expand(n, 2, 3)
        # q: where each output pixel lies in the (flipped) crop, inside it when in [-1, 1]
        q = affine_coords(theta, h, w)                                      # (B, H, W, 2)
        sign = flip_pairs(n, hsign, vsign, device)                          # (B, 2) or None
        if "area" in d:
            box = crop_boxes(d["area"], d["log_ratio"], d["corner"])
            size = box[:, 2:] if sign is None else sign * box[:, 2:]
            grid = torch.addcmul(box[:, :2].reshape(n, 1, 1, 2), q, size.view(n, 1, 1, 2))
        else:   # the whole image
            grid = q if sign is None else q * sign.view(n, 1, 1, 2)
        out = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        if has_affine and "area" in d:
            # RandomAffine fills with black what falls outside the crop
            out.mul_((q.abs().amax(-1) <= 1).unsqueeze(1))                  # (B, 1, H, W)
        return out


class Normaliser:
    """uint8 or 0..255 float ``(B, 3, H, W)`` -> ``(x - mean) / std`` in the model's layout.

    ``mean``/``std`` are ``(1, 3, 1, 1)`` in 0..255 units (``loaders.base.norm_tensors``).  One
    fused ``x * (1 / std) - mean / std`` pass does the uint8 -> float conversion too, and writes
    straight into a tensor of the model's dtype and memory format: no extra layout or cast pass.
    The constants are computed once, not per batch.
    """

    def __init__(self, mean: torch.Tensor, std: torch.Tensor):
        self.scale, self.shift = 1.0 / std, -mean / std
        self.rows: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def row_constants(self, w: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The constants repeated along an NHWC row ``(W * C,)``, once per width."""
        if w not in self.rows:
            c = self.scale.numel()
            self.rows[w] = (self.shift.view(c).repeat(w), self.scale.view(c).repeat(w))
        return self.rows[w]

    def __call__(self, x: torch.Tensor, *, channels_last: bool = False,
                 dtype: torch.dtype = torch.float32) -> torch.Tensor:
        b, c, h, w = x.shape
        layout = torch.channels_last if channels_last else torch.contiguous_format
        out = torch.empty((b, c, h, w), dtype=dtype, device=x.device, memory_format=layout)
        if c > 1 and channels_last and x.is_contiguous(memory_format=torch.channels_last) \
                and not x.is_contiguous():
            # NHWC in and out: channels are the innermost axis, and broadcasting a size-3 axis
            # there is slow on the CPU; as rows (B, H, W*C) against a repeated (W*C,) pattern
            # it vectorises
            shift, scale = self.row_constants(w)
            torch.addcmul(shift, x.permute(0, 2, 3, 1).reshape(b, h, w * c), scale,
                          out=out.permute(0, 2, 3, 1).view(b, h, w * c))
        else:
            torch.addcmul(self.shift, x, self.scale, out=out)
        return out


def normalise(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, *,
              channels_last: bool = False, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """One-off :class:`Normaliser` call (loaders build one and keep it)."""
    return Normaliser(mean, std)(x, channels_last=channels_last, dtype=dtype)
