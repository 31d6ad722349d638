"""Batched device augmentations follow the AugmentSpec they translate."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from fastleaf.data.augment import AugmentSpec
from fastleaf.data.batch_augment import (BatchAugment, DrawPlan, Normaliser, affine_coords,
                                         blend_colour, inverse_affine, normalise)
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
    y = blend_colour(torch.full((2, 3, 2, 2), 100.0), factors, torch.ones(2))
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
    draws = DrawPlan(AugmentSpec(train=True, rotate_deg=30, shift=0.1, scale=0.2)).draw(3, gen(),
                                                                                    "cpu")
    assert draws["angle"].abs().max() <= math.radians(30) and draws["shift"].shape == (3, 2)
    assert ((draws["zoom"] >= 0.8) & (draws["zoom"] <= 1.2)).all()
    theta = inverse_affine(draws["angle"], draws["zoom"], draws["shift"])
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
    h, v = flip_signs(torch.rand(6, generator=g), 0.5), flip_signs(torch.rand(6, generator=g), 0.5)
    expected = x.clone()
    for i in range(6):
        if h[i] < 0:
            expected[i] = expected[i].flip(2)
        if v[i] < 0:
            expected[i] = expected[i].flip(1)
    nhwc = x.contiguous(memory_format=torch.channels_last)
    assert torch.equal(flip_batch(x, h, v), expected)
    assert torch.equal(flip_batch(nhwc, h, v), expected)
    # one generator draws everything: the same state gives the same views
    spec = AugmentSpec(size=5, train=True, brightness=0.3, contrast=0.3)
    aug = BatchAugment(spec)
    assert torch.equal(aug(x, torch.Generator().manual_seed(0)),
                       aug(x, torch.Generator().manual_seed(0)))


def test_colour_is_the_other_backends_blend_about_the_grey_mean():
    # b * (c x + (1 - c) m), rounded only by the caller: what OpenCV's table and DALI compute
    x = torch.randint(40, 200, (5, 3, 6, 6), generator=gen(2), dtype=torch.uint8).float()
    b, c = torch.tensor([0.8, 1.0, 1.2, 0.9, 1.1]), torch.tensor([0.7, 1.3, 1.0, 0.8, 1.2])
    grey = (x * torch.tensor([0.2989, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1).mean((1, 2))
    expected = (b.view(-1, 1, 1, 1) * (c.view(-1, 1, 1, 1) * x
                                       + ((1 - c) * grey).view(-1, 1, 1, 1))).clamp(0, 255)
    assert torch.allclose(blend_colour(x.clone(), b, c), expected, atol=1e-3)


def test_every_draw_of_a_batch_is_one_block_in_its_range():
    spec = AugmentSpec.train_preset(32)
    plan = DrawPlan(spec)
    assert set(plan.columns) == {"area", "log_ratio", "corner", "hflip", "vflip", "angle",
                                 "zoom", "shift", "brightness", "contrast"}
    d = plan.draw(400, gen(), "cpu")
    assert d["area"].shape == (400, 10) and d["corner"].shape == (400, 2)
    for name, (low, high) in {"area": spec.crop_scale, "brightness": (0.8, 1.2),
                              "contrast": (0.8, 1.2), "hflip": (0, 1)}.items():
        assert d[name].min() >= low and d[name].max() < high
        assert d[name].max() - d[name].min() > 0.8 * (high - low)       # the whole range
    assert DrawPlan(AugmentSpec.eval_preset(32)).columns == {}
    light = DrawPlan(AugmentSpec.train_preset(32, "light"))
    assert set(light.columns) == {"hflip", "vflip"}


def test_the_normaliser_keeps_its_constants_between_batches():
    mean, std = norm_tensors(AugmentSpec().mean, AugmentSpec().std, torch.device("cpu"))
    norm = Normaliser(mean, std)
    x = batch(size=8).contiguous(memory_format=torch.channels_last)
    first = norm(x, channels_last=True)
    constants = norm.rows[8]
    assert torch.equal(norm(x, channels_last=True), first) and norm.rows[8] is constants
    assert torch.allclose(first, (x.float() - mean) / std, atol=1e-5)
