"""The CPU backends translate one AugmentSpec: pinned draws give the same pixels everywhere.

Backends: the worker loader with albumentations (OpenCV decode + one warp + one table), the
same loader with the torchvision fallback, cache-ram (OpenCV views in a thread pool) and DALI's
CPU pipeline.  Each reads ``AugmentSpec.draws()``, so a spec whose ranges are pinned to one
value makes every random view the same known view.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pytest
import torch

from fastleaf.data.augment import AugmentSpec, Draws
from fastleaf.data.table import load_table
from fastleaf.loaders import LoaderOptions, create_loader
from fastleaf.loaders.base import epoch_order
from fastleaf.loaders.workers_backend import WorkerLoader

SIZE = 128          # the tiny set's JPEG size: no resize anywhere
EPS = 1e-9          # ranges a hair wide, so each backend runs its ops on an identity draw


@dataclass(frozen=True)
class Pinned(AugmentSpec):
    pinned: Draws = Draws()

    def draws(self) -> Draws:
        return self.pinned


IDENTITY = Draws(crop_scale=(1 - EPS, 1.0), crop_ratio=(1.0, 1.0), angle=(0.0, EPS),
                 zoom=(1.0, 1.0 + EPS), brightness=(1.0, 1.0 + EPS), contrast=(1.0, 1.0 + EPS))


@pytest.fixture(scope="module")
def samples(tiny_data):
    rows = load_table(tiny_data, val_fraction=0.0, seed=0).all_train.subset(np.arange(10))
    # each row its own label: every backend's order can be read off the labels it yields
    return replace(rows, labels=np.arange(len(rows), dtype=np.int64))


def options() -> LoaderOptions:
    return LoaderOptions(batch_size=5, workers=0, seed=3, channels_last=True)


def backends() -> list[str]:
    names = ["albumentations", "torchvision", "cache-ram"]
    from fastleaf.loaders.dali_backend import dali_import_error

    return names + (["dali"] if dali_import_error() is None else [])


def views(samples, spec: AugmentSpec, backend: str) -> torch.Tensor:
    """The first epoch's views in row order, back in 0..255 units: ``(N, 3, S, S)`` float."""
    if backend in ("albumentations", "torchvision"):
        loader = WorkerLoader(samples, spec, options(), pipeline=backend)
        assert loader.pipeline == backend
    else:
        loader = create_loader(samples, spec, options(), backend)
        assert loader.backend == backend
        if backend == "cache-ram":
            assert loader.views is not None          # OpenCV views, not grid_sample
    batches = list(loader)
    images = torch.cat([b[0] for b in batches]).float()
    order = torch.cat([b[1] for b in batches])
    assert sorted(order.tolist()) == list(range(len(samples)))     # each row once
    if backend != "dali":       # DALI's reader shuffles with its own generator
        assert order.tolist() == epoch_order(len(samples), options(), 0).tolist()
    out = torch.empty_like(images)
    out[order] = images
    mean = torch.tensor(spec.mean).view(1, 3, 1, 1) * 255
    std = torch.tensor(spec.std).view(1, 3, 1, 1) * 255
    return out * std + mean


def reference(samples) -> torch.Tensor:
    from fastleaf.data.imageio import load_image

    return torch.stack([load_image(p, SIZE) for p in samples.paths]).float()


@pytest.mark.slow
def test_an_identity_draw_gives_the_decoded_pixels_on_every_backend(samples):
    spec = Pinned(size=SIZE, train=True, pinned=IDENTITY)
    expected = reference(samples)
    for backend in backends():
        got = views(samples, spec, backend)
        diff = (got - expected).abs()
        assert diff.max() <= 1.0 + 1e-3, f"{backend}: off by {float(diff.max()):.2f} levels"


def interior(x: torch.Tensor, margin: int = 4) -> torch.Tensor:
    return x[..., margin:-margin, margin:-margin]


@pytest.mark.parametrize("draws", [
    Draws(angle=(15.0, 15.0)),
    Draws(angle=(-30.0, -30.0), zoom=(1.2, 1.2)),
    Draws(hflip=1.0, vflip=1.0),
    Draws(brightness=(1.2, 1.2), contrast=(0.7, 0.7)),
    Draws(angle=(10.0, 10.0), zoom=(0.9, 0.9), shift=(-0.05, -0.05), hflip=1.0),
], ids=["rotate", "rotate-zoom", "flips", "colour", "flip-rotate-zoom-shift"])
def test_a_pinned_view_is_the_same_on_every_backend(samples, draws):
    spec = Pinned(size=SIZE, train=True, pinned=draws)
    reference_view = views(samples, spec, "albumentations")
    assert (reference_view - reference(samples)).abs().mean() > 5      # it did change pixels
    others = backends()[1:]
    if draws.shift != (0.0, 0.0):
        others.remove("torchvision")     # RandomAffine only draws symmetric shifts
    for backend in others:
        diff = interior((views(samples, spec, backend) - reference_view).abs())
        # bilinear kernels differ in their fixed-point rounding; the geometry may not
        assert float(diff.mean()) < 1.0, f"{backend}: mean difference {float(diff.mean()):.2f}"
        assert float((diff > 8).float().mean()) < 0.01, backend


def test_a_mirrored_rotation_is_told_apart(samples):
    # the check above can fail: the opposite turn is a different view
    turn = views(samples, Pinned(size=SIZE, train=True, pinned=Draws(angle=(15.0, 15.0))),
                 "cache-ram")
    other = views(samples, Pinned(size=SIZE, train=True, pinned=Draws(angle=(-15.0, -15.0))),
                  "cache-ram")
    assert float(interior((turn - other).abs()).mean()) > 5
