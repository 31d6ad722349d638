"""What an exported model carries and how its inputs are made: free of torch.

An exported file (ONNX or TorchScript) holds one JSON record, :class:`ModelInfo`: the class
names, the input size, mean/std, interpolation and crop, the model name, the fastleaf version
and the checkpoint's SHA-256.  Every reader prepares photos from that record alone, as the
run's validation did (decode upright to RGB, resize the whole photo to ``size`` x ``size`` with
antialiased bilinear, scale to [0, 1], subtract the mean, divide by the std):

    info = ModelInfo.from_json(text)
    batch = np.stack([load_photo(Path("leaf.jpg").read_bytes(), "leaf.jpg", info)])
    views = tta_views(batch, "flips")       # [(B, 3, S, S) float32, ...], the batch first

Photos are decoded through the header checks of ``fastleaf.data.imageio`` (the pixel limit,
``FASTLEAF_MAX_PIXELS``), so a decompression bomb is refused before any pixel is decoded.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields

import numpy as np

from ..data.imageio import ImageDecodeError, decode_with_pillow, probe
from ..errors import FastleafError
from ..predict import DEFAULT_CROP_FRACTION
from ..vocab import TTA_NAMES

METADATA_KEY = "fastleaf"            # the ONNX metadata_props key holding the JSON record
TORCHSCRIPT_EXTRA = "fastleaf.json"  # the TorchScript extra file holding it
INPUT_NAME, OUTPUT_NAME = "images", "logits"
RECORD_FORMAT = 1


class ModelFileError(FastleafError, ValueError):
    """A model file that is not a fastleaf export (or is damaged): named in one line."""


@dataclass(frozen=True)
class ExportSettings:
    """``fastleaf export`` defaults (the CLI reads them here, without importing torch)."""

    format: str = "onnx"
    batch: str = "dynamic"           # "dynamic" or a fixed batch size
    opset: int = 17                  # LayerNormalization is native from 17 (DeiT's blocks)
    check: int = 64                  # validation images run through both models
    tolerance: float = 1e-3          # largest |torch prob - exported prob| accepted


@dataclass(frozen=True)
class ModelInfo:
    """Everything inference needs besides the weights (stored as JSON in the file)."""

    model_name: str
    classes: list[str]
    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str = "bilinear"  # the filter that resizes the whole photo to size x size
    crop_pct: float = 1.0            # < 1: resize to size / crop_pct, then a centre crop
    fastleaf_version: str = ""
    checkpoint_sha256: str = ""
    batch: str = "dynamic"           # or the fixed batch size the graph was traced with
    input_name: str = INPUT_NAME
    output_name: str = OUTPUT_NAME   # logits (B, classes); softmax is the reader's
    format: int = RECORD_FORMAT
    extra: dict = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str, source: str = "model") -> "ModelInfo":
        try:
            values = json.loads(text)
            known = {f.name for f in fields(cls)}
            values = {k: v for k, v in values.items() if k in known}
            for key in ("mean", "std"):      # JSON lists back to the tuples they were written as
                values[key] = tuple(float(v) for v in values[key])
            info = cls(**values)
        except (TypeError, ValueError, KeyError) as err:
            raise ModelFileError(f"{source}: unreadable fastleaf metadata ({err})") from None
        if info.format > RECORD_FORMAT:
            raise ModelFileError(f"{source}: exported by a newer fastleaf (metadata format "
                                 f"{info.format}); upgrade fastleaf to read it")
        return info

    @property
    def fixed_batch(self) -> int | None:
        return None if self.batch == "dynamic" else int(self.batch)


_FILTERS = {"bilinear": "BILINEAR", "bicubic": "BICUBIC", "nearest": "NEAREST"}


def _resize(pixels: np.ndarray, side: int, interpolation: str) -> np.ndarray:
    """``(H, W, 3)`` float32 -> ``(side, side, 3)`` float32, each plane through Pillow.

    Float planes keep full precision between the horizontal and vertical passes (8-bit
    Pillow rounds in between); with one rounding at the end this gives the bytes of the
    loaders' ``imageio.resize_uint8`` (antialiased bilinear, torch's port of Pillow's filter).
    """
    from PIL import Image

    if pixels.shape[:2] == (side, side):
        return pixels
    method = getattr(Image.Resampling, _FILTERS[interpolation])
    planes = [np.asarray(Image.fromarray(np.ascontiguousarray(pixels[..., c]), "F")
                         .resize((side, side), method)) for c in range(3)]
    return np.stack(planes, axis=-1)


def load_photo(data: bytes, name: str, info: ModelInfo) -> np.ndarray:
    """One photo's bytes -> ``(3, size, size)`` float32, normalised as ``info`` says.

    Raises:
        ImageDecodeError: not an image, damaged or truncated (named).
        ImageTooLarge: above the pixel limit; refused before decoding.
    """
    if not data:
        raise ImageDecodeError(f"{name}: empty file")
    probe(data, name)
    rgb = np.asarray(decode_with_pillow(data, name).convert("RGB"), dtype=np.float32)
    if info.interpolation not in _FILTERS:
        raise ModelFileError(f"unknown interpolation {info.interpolation!r} in the model's "
                             f"metadata (expected one of {', '.join(_FILTERS)})")
    side = int(round(info.size / info.crop_pct)) if info.crop_pct < 1.0 else info.size
    # uint8 again after the resize, as the loaders hand over their batches
    pixels = np.clip(np.round(_resize(rgb, side, info.interpolation)), 0, 255)
    if side > info.size:
        top = (side - info.size) // 2
        pixels = pixels[top:top + info.size, top:top + info.size]
    pixels = pixels / np.float32(255.0)                                 # (S, S, 3)
    pixels = (pixels - np.asarray(info.mean, np.float32)) / np.asarray(info.std, np.float32)
    return np.ascontiguousarray(pixels.transpose(2, 0, 1), dtype=np.float32)


def load_photo_file(path, info: ModelInfo) -> np.ndarray:
    from ..data.imageio import read_bytes

    return load_photo(read_bytes(path), str(path), info)


def _five_crop(images: np.ndarray, fraction: float) -> list[np.ndarray]:
    """Centre + four corners of ``fraction`` of each side, resized back (as ``tta.five_crop``)."""
    from PIL import Image

    if not 0.0 < fraction <= 1.0:
        raise FastleafError(f"crop fraction must be in (0, 1], got {fraction}")
    height, width = images.shape[-2:]
    ch, cw = max(1, round(height * fraction)), max(1, round(width * fraction))
    top, left = int(round((height - ch) / 2.0)), int(round((width - cw) / 2.0))
    boxes = [(top, left), (0, 0), (0, width - cw), (height - ch, 0), (height - ch, width - cw)]
    out = []
    for y, x in boxes:
        crop = images[..., y:y + ch, x:x + cw]
        # float planes through Pillow's bilinear: the same filter on normalised values
        planes = [np.asarray(Image.fromarray(plane).resize((width, height), Image.BILINEAR))
                  for plane in crop.reshape(-1, ch, cw)]
        out.append(np.stack(planes).reshape(images.shape).astype(np.float32))
    return out


def tta_views(images: np.ndarray, name: str,
              crop_fraction: float = DEFAULT_CROP_FRACTION) -> list[np.ndarray]:
    """The views of ``fastleaf.predict.tta`` on a ``(B, 3, H, W)`` array, the batch first."""
    if name == "none":
        return [images]
    if name == "hflip":
        return [images, images[..., ::-1]]
    if name == "flips":
        return [images, images[..., ::-1], images[..., ::-1, :], images[..., ::-1, ::-1]]
    if name == "rot90":
        views = []
        for turns in range(4):
            turned = np.rot90(images, turns, axes=(-2, -1))
            views += [turned, turned[..., ::-1]]
        return [np.ascontiguousarray(v) for v in views]
    if name == "five-crop":
        return _five_crop(images, crop_fraction)
    raise FastleafError(f"unknown TTA {name!r}; choose from {', '.join(TTA_NAMES)}")


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)

