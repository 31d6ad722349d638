"""Decode one image file to an RGB ``uint8`` tensor ``(3, H, W)``, whatever its format or mode.

libjpeg-turbo through ``torchvision.io.decode_jpeg`` is the fast path; grayscale, RGBA, CMYK,
PNG and anything else Pillow reads go through Pillow.  Errors name the file.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.io import ImageReadMode, decode_jpeg


class ImageDecodeError(RuntimeError):
    pass


def read_bytes(path: Path) -> torch.Tensor:
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise ImageDecodeError(f"{path}: cannot read image ({err.strerror or err})") from None
    if not data:
        raise ImageDecodeError(f"{path}: empty file")
    return torch.frombuffer(bytearray(data), dtype=torch.uint8)


def decode_with_pillow(path: Path) -> torch.Tensor:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.load()
            rgb = img.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        raise ImageDecodeError(f"{path}: not a readable image ({err})") from None
    return torch.from_numpy(np.asarray(rgb).copy()).permute(2, 0, 1).contiguous()


def decode_rgb(path: Path) -> torch.Tensor:
    """``(3, H, W)`` uint8 RGB."""
    data = read_bytes(path)
    is_jpeg = len(data) > 3 and data[0] == 0xFF and data[1] == 0xD8
    if is_jpeg:
        try:
            return decode_jpeg(data, mode=ImageReadMode.RGB)
        except RuntimeError:
            pass  # CMYK, progressive oddities or a damaged tail: let Pillow try and report
    return decode_with_pillow(path)


def resize_uint8(image: torch.Tensor, size: int) -> torch.Tensor:
    """Resize ``(3, H, W)`` or ``(B, 3, H, W)`` uint8 to ``size`` x ``size`` (bilinear, antialiased)."""
    if image.shape[-2:] == (size, size):
        return image
    batched = image.dim() == 4
    x = image if batched else image.unsqueeze(0)
    x = F.interpolate(x.float(), size=(size, size), mode="bilinear", align_corners=False,
                      antialias=True)
    x = x.round_().clamp_(0, 255).to(torch.uint8)
    return x if batched else x[0]


def load_image(path: Path, size: int) -> torch.Tensor:
    """Decode to RGB and resize to the model's input size: ``(3, size, size)`` uint8."""
    return resize_uint8(decode_rgb(path), size)
