"""Decode one image file to an RGB ``uint8`` tensor ``(3, H, W)``, whatever its format or mode.

The one decode entry point of the package (check, loaders, caches, predict, viz, summary):
the header is read first and an image above the pixel limit is refused before any pixel is
decoded (``FASTLEAF_MAX_PIXELS``, default 40 megapixels; a Classify Leaves image is 0.05).
EXIF orientation is applied.  libjpeg-turbo through ``torchvision.io.decode_jpeg`` is the
fast path; grayscale, RGBA, CMYK, PNG and anything else Pillow reads go through Pillow.
Errors name the file.  Importing it needs no torch (torch is imported where a tensor is made), so
the ONNX Runtime path (``fastleaf.export.onnx_runtime``) shares its header checks.
"""
from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

from typing import TYPE_CHECKING

import numpy as np

from ..errors import FastleafError


if TYPE_CHECKING:
    import torch

DEFAULT_MAX_PIXELS = 40_000_000
EXIF_ORIENTATION = 0x0112


class ImageDecodeError(FastleafError, RuntimeError):
    pass


class ImageTooLarge(ImageDecodeError):
    """A header announcing more pixels than the limit: a decompression bomb or a stray photo."""


def max_pixels() -> int:
    """The pixel limit: ``FASTLEAF_MAX_PIXELS`` when set, else 40 megapixels."""
    raw = os.environ.get("FASTLEAF_MAX_PIXELS", "")
    if not raw:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise FastleafError(f"FASTLEAF_MAX_PIXELS={raw!r}: expected a positive whole number")
    return value


@dataclass
class Header:
    format: str | None
    mode: str
    size: tuple[int, int]            # (width, height)
    orientation: int = 1             # EXIF orientation; 1 is upright


def probe(data: bytes, path: Path) -> Header:
    """Read the header only (no pixels) and enforce the pixel limit."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(BytesIO(data)) as img:
            header = Header(img.format, img.mode, img.size,
                            int(img.getexif().get(EXIF_ORIENTATION, 1) or 1))
    except Image.DecompressionBombError as err:     # Pillow's own, higher limit
        raise ImageTooLarge(f"{path}: above the pixel limit of {max_pixels():,} "
                            f"(FASTLEAF_MAX_PIXELS); refused, not decoded ({err})") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        raise ImageDecodeError(f"{path}: not a readable image ({err})") from None
    width, height = header.size
    if width * height > max_pixels():
        raise ImageTooLarge(f"{path}: {width}x{height} pixels is above the limit of "
                            f"{max_pixels():,} (FASTLEAF_MAX_PIXELS); refused, not decoded")
    return header


# what a path that is not a regular file is, for the message that refuses it
NOT_REGULAR = ((stat.S_ISFIFO, "a named pipe"), (stat.S_ISDIR, "a folder"),
               (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device"),
               (stat.S_ISSOCK, "a socket"))


def read_regular(path: Path) -> bytes:
    """The bytes of the regular file at ``path``; a named pipe, device, folder or socket is
    refused (``OSError``) before any read, which on a pipe or device could block forever.

    The file is opened without blocking and checked through its descriptor, so a path swapped
    between the check and the read is caught too.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = next((name for test, name in NOT_REGULAR if test(mode)), "special")
            raise OSError(errno.EINVAL, f"not a regular file ({kind})", str(path))
        with os.fdopen(fd, "rb", closefd=False) as file:
            return file.read()
    finally:
        os.close(fd)


def read_bytes(path: Path) -> bytes:
    try:
        data = read_regular(path)
    except OSError as err:
        raise ImageDecodeError(f"{path}: cannot read image ({err.strerror or err})") from None
    if not data:
        raise ImageDecodeError(f"{path}: empty file")
    return data


def decode_with_pillow(data: bytes, path: Path):
    """Fully decoded Pillow image, upright (EXIF orientation applied), in its own mode."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(BytesIO(data)) as img:
            img.load()
            return ImageOps.exif_transpose(img)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError,
            Image.DecompressionBombError) as err:
        raise ImageDecodeError(f"{path}: not a readable image ({err})") from None


def pillow_rgb(img) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB of a Pillow image in any mode.

    Deep greyscale (16-bit PNG: mode ``I;16``/``I``) keeps the top 8 bits of each sample, as
    OpenCV reads it; Pillow's own conversion clips every value above 255 to white.
    """
    if img.mode.startswith("I;16") or img.mode == "I":
        grey = (np.asarray(img).astype(np.int64) >> 8).clip(0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=-1)
    return np.asarray(img.convert("RGB"))


def decode_bytes(data: bytes, path: Path) -> torch.Tensor:
    """``(3, H, W)`` uint8 RGB from a file's bytes, within the pixel limit."""
    import torch
    from torchvision.io import ImageReadMode, decode_jpeg

    probe(data, path)
    if data[:3] == b"\xff\xd8\xff":
        try:
            return decode_jpeg(torch.frombuffer(bytearray(data), dtype=torch.uint8),
                               mode=ImageReadMode.RGB, apply_exif_orientation=True)
        except RuntimeError:
            pass  # CMYK, progressive oddities or a damaged tail: let Pillow try and report
    rgb = pillow_rgb(decode_with_pillow(data, path))
    return torch.from_numpy(rgb.copy()).permute(2, 0, 1).contiguous()


def decode_rgb(path: Path) -> torch.Tensor:
    """``(3, H, W)`` uint8 RGB of the file at ``path``."""
    return decode_bytes(read_bytes(path), path)


def resize_uint8(image: torch.Tensor, size: int) -> torch.Tensor:
    """Resize ``(3, H, W)`` or ``(B, 3, H, W)`` uint8 to ``size`` x ``size`` (bilinear, antialiased)."""
    if image.shape[-2:] == (size, size):
        return image
    import torch
    import torch.nn.functional as F

    batched = image.dim() == 4
    x = image if batched else image.unsqueeze(0)
    x = F.interpolate(x.float(), size=(size, size), mode="bilinear", align_corners=False,
                      antialias=True)
    x = x.round_().clamp_(0, 255).to(torch.uint8)
    return x if batched else x[0]


def load_image(path: Path, size: int) -> torch.Tensor:
    """Decode to RGB and resize to the model's input size: ``(3, size, size)`` uint8."""
    return resize_uint8(decode_rgb(path), size)
