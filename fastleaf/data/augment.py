"""One description of the augmentations, translated by every loader backend.

:class:`AugmentSpec` is plain data (the options a run names); :meth:`AugmentSpec.draws` is its
one derived view, :class:`Draws`: the range each random parameter of a view is drawn from.
Every backend (workers, DALI, the caches) reads the draws and turns them into its own
operators, so "the same augmentations" holds by construction and tests can hold the backends
side by side.  The train preset follows the top Classify Leaves entries: horizontal + vertical
flip, rotate, brightness/contrast, shift-scale-rotate and a random resized crop.

    spec = AugmentSpec.train_preset(size=224)            # training views ("kaggle")
    spec = AugmentSpec.eval_preset(size=224)             # resize + normalise only
    spec.draws().affine                                  # rotate, zoom or shift: one warp
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from ..errors import UsageError
from ..vocab import AUGMENTS

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Draws:
    """Where each random parameter of a view comes from; the identity by default.

    Every CPU backend reads these ranges (not the spec's fields), so a range pinned to one value
    (``angle=(15, 15)``) gives every backend the same view, which is how they are tested.
    """

    hflip: float = 0.0                          # probability
    vflip: float = 0.0
    angle: tuple[float, float] = (0.0, 0.0)     # degrees, counter-clockwise on screen
    zoom: tuple[float, float] = (1.0, 1.0)
    shift: tuple[float, float] = (0.0, 0.0)     # fraction of the side, drawn per axis
    brightness: tuple[float, float] = (1.0, 1.0)
    contrast: tuple[float, float] = (1.0, 1.0)
    crop_scale: tuple[float, float] = (1.0, 1.0)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)

    @property
    def random_crop(self) -> bool:
        return self.crop_scale != (1.0, 1.0)

    @property
    def affine(self) -> bool:
        """Rotate, zoom or shift: pixels move off the grid (zero fill outside the source)."""
        return self.angle != (0.0, 0.0) or self.zoom != (1.0, 1.0) or self.shift != (0.0, 0.0)

    @property
    def colour(self) -> bool:
        return self.brightness != (1.0, 1.0) or self.contrast != (1.0, 1.0)

    @property
    def identity(self) -> bool:
        return not (self.random_crop or self.affine or self.colour or self.hflip > 0
                    or self.vflip > 0)


@dataclass(frozen=True)
class AugmentSpec:
    size: int = 224
    train: bool = False
    hflip: float = 0.0            # probability of a horizontal flip
    vflip: float = 0.0            # probability of a vertical flip
    rotate_deg: float = 0.0       # uniform rotation in [-rotate_deg, rotate_deg]
    brightness: float = 0.0       # brightness factor drawn from [1 - b, 1 + b]
    contrast: float = 0.0         # contrast factor drawn from [1 - c, 1 + c]
    shift: float = 0.0            # shift-scale-rotate: translation as a fraction of the side
    scale: float = 0.0            # shift-scale-rotate: zoom drawn from [1 - s, 1 + s]
    crop_scale: tuple[float, float] = (1.0, 1.0)   # random resized crop area fraction
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    @classmethod
    def train_preset(cls, size: int = 224, strength: str = "kaggle") -> "AugmentSpec":
        """Training views. ``strength``: ``kaggle`` (the winning recipe), ``light`` or ``none``."""
        if strength == "none":
            return cls(size=size, train=True)
        if strength == "light":
            return cls(size=size, train=True, hflip=0.5, vflip=0.5)
        if strength != "kaggle":
            raise UsageError(f"unknown augmentation strength {strength!r}: "
                             f"{', '.join(AUGMENTS)}")
        return cls(size=size, train=True, hflip=0.5, vflip=0.5, rotate_deg=20.0,
                   brightness=0.2, contrast=0.2, shift=0.0625, scale=0.1,
                   crop_scale=(0.6, 1.0))

    @classmethod
    def eval_preset(cls, size: int = 224) -> "AugmentSpec":
        return cls(size=size, train=False)

    def draws(self) -> "Draws":
        """The ranges every backend draws its per-image view parameters from."""
        if not self.train:
            return Draws()
        return Draws(hflip=self.hflip, vflip=self.vflip,
                     angle=(-self.rotate_deg, self.rotate_deg),
                     zoom=(1 - self.scale, 1 + self.scale), shift=(-self.shift, self.shift),
                     brightness=(1 - self.brightness, 1 + self.brightness),
                     contrast=(1 - self.contrast, 1 + self.contrast),
                     crop_scale=self.crop_scale, crop_ratio=self.crop_ratio)

    def to_dict(self) -> dict:
        return asdict(self)
