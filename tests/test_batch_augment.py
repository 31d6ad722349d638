"""Batched device augmentations follow the AugmentSpec they translate."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from fastleaf.data.augment import AugmentSpec
from fastleaf.data.batch_augment import (BatchAugment, adjust_brightness, affine_coords,
                                         inverse_affine, normalise)
from fastleaf.loaders.base import norm_tensors


def batch(n=4, size=16, seed=0) -> torch.Tensor:
    return torch.randint(0, 256, (n, 3, size, size), generator=torch.Generator().manual_seed(seed),
                         dtype=torch.uint8)


def gen(seed=0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_identity_spec_leaves_the_batch_unchanged():
    x = batch()
    for spec in (AugmentSpec.eval_preset(16), AugmentSpec.train_preset(16, "none")):
        out = BatchAugment(spec)(x, gen())
        assert out.dtype == torch.float32 and torch.equal(out, x.float())


def test_hflip_with_probability_one_flips_exactly():
    x = batch()
    out = BatchAugment(AugmentSpec(size=16, train=True, hflip=1.0))(x, gen())
    assert torch.equal(out, x.float().flip(3))
    out = BatchAugment(AugmentSpec(size=16, train=True, vflip=1.0))(x, gen())
    assert torch.equal(out, x.float().flip(2))


def test_flip_inside_the_affine_warp_is_exact_at_pixel_centres():
    # a zero-degree rotation forces the grid_sample path; flips must still be exact
    x = batch()
    spec = AugmentSpec(size=16, train=True, hflip=1.0, rotate_deg=1e-9)
    out = BatchAugment(spec)(x, gen())
    assert torch.allclose(out, x.float().flip(3), atol=1e-3)


def test_flip_probability_half_flips_some_and_is_reproducible():
    x = batch(n=64, size=8)
    aug = BatchAugment(AugmentSpec(size=8, train=True, hflip=0.5))
    out = aug(x, gen(3))
    flipped = sum(torch.equal(o, f) for o, f in zip(out, x.float().flip(3)))
    kept = sum(torch.equal(o, f) for o, f in zip(out, x.float()))
    assert 10 < flipped < 54 and flipped + kept == 64
    assert torch.equal(out, aug(x, gen(3)))            # same generator state, same views
    assert not torch.equal(out, aug(x, gen(4)))


def test_brightness_scales_each_image_by_its_factor_within_the_range():
    x = torch.randint(0, 100, (32, 3, 8, 8), generator=gen(), dtype=torch.uint8)   # no clipping
    out = BatchAugment(AugmentSpec(size=8, train=True, brightness=0.4))(x, gen())
    ratio = out.mean((1, 2, 3)) / x.float().mean((1, 2, 3))
    assert ratio.min() >= 0.6 - 1e-5 and ratio.max() <= 1.4 + 1e-5
    assert ratio.std() > 0.05                                   # drawn per image
    # exactly a per-image factor: out == x * ratio everywhere
    assert torch.allclose(out, x.float() * ratio.view(-1, 1, 1, 1), atol=1e-3)
    factors = torch.tensor([0.5, 2.0])
    y = adjust_brightness(torch.full((2, 3, 2, 2), 100.0), factors)
    assert y[0].mean() == 50.0 and y[1].mean() == 200.0


def test_contrast_keeps_the_grey_mean_and_scales_the_spread():
    x = torch.randint(60, 190, (16, 3, 8, 8), generator=gen(), dtype=torch.uint8)
    out = BatchAugment(AugmentSpec(size=8, train=True, contrast=0.5))(x, gen())
    luma = torch.tensor([0.2989, 0.587, 0.114]).view(1, 3, 1, 1)
    grey_in, grey_out = (x.float() * luma).sum(1).mean((1, 2)), (out * luma).sum(1).mean((1, 2))
    assert torch.allclose(grey_in, grey_out, atol=1e-2)
    spread = out.std((1, 2, 3)) / x.float().std((1, 2, 3))
    assert spread.min() >= 0.5 - 1e-4 and spread.max() <= 1.5 + 1e-4


def test_affine_coords_equal_affine_grid():
    theta = inverse_affine(3, AugmentSpec(rotate_deg=30, shift=0.1, scale=0.2), gen(), "cpu")
    reference = F.affine_grid(theta, [3, 3, 12, 20], align_corners=False)
    assert torch.allclose(affine_coords(theta, 12, 20), reference, atol=1e-6)


def test_kaggle_preset_gives_new_views_of_the_same_shape_in_range():
    x = batch(n=6, size=32)
    aug = BatchAugment(AugmentSpec.train_preset(32))
    out = aug(x, gen())
    assert out.shape == x.shape and out.dtype == torch.float32
    assert out.min() >= 0 and out.max() <= 255
    assert not torch.allclose(out, x.float())
    assert torch.equal(x, batch(n=6, size=32))                 # the input is not modified


def test_random_resized_crop_of_a_constant_image_stays_constant():
    # a crop inside a flat image is flat: no zero padding leaks in without rotation/shift
    x = torch.full((8, 3, 16, 16), 77, dtype=torch.uint8)
    out = BatchAugment(AugmentSpec(size=16, train=True, crop_scale=(0.3, 1.0)))(x, gen())
    assert torch.allclose(out, torch.full_like(out, 77.0), atol=1e-3)


def test_normalise_matches_the_loader_seam_and_sets_the_layout():
    x = batch()
    mean, std = norm_tensors(AugmentSpec().mean, AugmentSpec().std, torch.device("cpu"))
    out = normalise(x, mean, std, channels_last=True)
    assert torch.allclose(out, (x.float() - mean) / std, atol=1e-5)
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert normalise(x, mean, std, dtype=torch.bfloat16).dtype == torch.bfloat16


def test_flips_and_colour_order_match_the_indexing_reference():
    from fastleaf.data.batch_augment import flip_batch, flip_signs

    x = torch.randint(0, 256, (6, 3, 5, 7), dtype=torch.uint8)
    g = torch.Generator().manual_seed(3)
    h, v = flip_signs(6, 0.5, g, "cpu"), flip_signs(6, 0.5, g, "cpu")
    expected = x.clone()
    for i in range(6):
        if h[i] < 0:
            expected[i] = expected[i].flip(2)
        if v[i] < 0:
            expected[i] = expected[i].flip(1)
    nhwc = x.contiguous(memory_format=torch.channels_last)
    assert torch.equal(flip_batch(x.clone(), h, v), expected)
    assert torch.equal(flip_batch(nhwc.clone(), h, v), expected)
    # per-batch choices come from the host generator: the device one only draws per image
    spec = AugmentSpec(size=5, train=True, brightness=0.3, contrast=0.3)
    aug = BatchAugment(spec)
    a = aug(x, torch.Generator().manual_seed(0), torch.Generator().manual_seed(1))
    b = aug(x, torch.Generator().manual_seed(0), torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="host"):
        aug(x, SimpleNamespace(device=torch.device("cuda")))
