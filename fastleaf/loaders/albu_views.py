"""An :class:`AugmentSpec` as one albumentations transform, for the worker loader.

Imported only where it is used (albumentations pulls in pydantic and OpenCV).  The whole view --
random resized crop, flips, rotate, shift-scale and brightness/contrast -- is one
``ImageOnlyTransform`` whose parameters come from :func:`cv_augment.draw_view` and whose pixels
come from :func:`cv_augment.render` (one ``warpAffine`` + one ``LUT``), so the worker loader and
the ``cache-ram`` loader produce the same view for the same draw.

    views = build_views(AugmentSpec.train_preset(224), seed=0)
    out = views(image=hwc_uint8)["image"]
"""
from __future__ import annotations

from typing import Any

import albumentations as A
import numpy as np

from ..data.augment import AugmentSpec, Draws
from .cv_augment import View, draw_view, render


class SpecView(A.ImageOnlyTransform):
    """Random view of an ``(S, S, 3)`` uint8 image as ``draws`` describes it (always applied)."""

    def __init__(self, draws: Draws, size: int):
        super().__init__(p=1.0)
        self.draws, self.size = draws, size

    def get_params_dependent_on_data(self, params: dict[str, Any],
                                     data: dict[str, Any]) -> dict[str, Any]:
        # the transform's own generator: Compose(seed=...) and set_random_seed reach it
        return {"view": draw_view(self.draws, self.size, self.random_generator)}

    def apply(self, img: np.ndarray, view: View, **params: Any) -> np.ndarray:
        return render(img, view, self.size)

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("draws", "size")


def build_views(spec: AugmentSpec, seed: int) -> A.Compose | None:
    """A seeded Compose for ``spec``'s training views; None when nothing is random."""
    draws = spec.draws()
    if draws.identity:
        return None
    return A.Compose([SpecView(draws, spec.size)], seed=seed)
