"""Test-time views are the transforms they claim to be, and their softmax is averaged."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from fastleaf.predict import tta
from fastleaf.train.loop import predict_logits
from fastleaf.train.precision import create_precision
from fastleaf.vocab import TTA_NAMES


@pytest.fixture
def images() -> torch.Tensor:
    return torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))


def test_hflip_of_hflip_is_identity(images):
    once = tta.hflip(images)
    assert not torch.equal(once, images)
    assert torch.equal(once[..., 0], images[..., -1])          # left column <- right column
    assert torch.equal(tta.hflip(once), images)
    assert torch.equal(tta.vflip(tta.vflip(images)), images)


def test_dihedral_views_distinct_and_invertible(images):
    out = tta.views("rot90")(images)
    assert len(out) == 8 == len(tta.DIHEDRAL)
    assert torch.equal(out[0], images)                         # the first view is the input
    for i in range(8):
        for j in range(i + 1, 8):
            assert not torch.equal(out[i], out[j]), (tta.DIHEDRAL[i], tta.DIHEDRAL[j])
    for view, (turns, mirror) in zip(out, tta.DIHEDRAL):
        assert view.shape == images.shape
        assert torch.equal(tta.undo_dihedral(view, turns, mirror), images)


def test_flips_are_the_mirror_subgroup(images):
    out = tta.views("flips")(images)
    assert len(out) == 4
    both = images.flip(-1).flip(-2)
    assert torch.equal(out[3], both)
    assert torch.equal(tta.dihedral(images, 2, False), both)   # h+v mirror = 180° turn


def test_five_crop_shapes_and_centre():
    x = torch.arange(2 * 3 * 16 * 16, dtype=torch.float32).view(2, 3, 16, 16)
    x = x.contiguous(memory_format=torch.channels_last)
    out = tta.views("five-crop", crop_fraction=0.5)(x)
    assert len(out) == 5
    for view in out:
        assert view.shape == x.shape
        assert view.is_contiguous(memory_format=torch.channels_last)
    # a fraction of 1 keeps every crop equal to the image
    whole = tta.five_crop(x, 1.0)
    assert all(torch.allclose(v, x) for v in whole)
    # corners differ from each other: top-left sees low values, bottom-right high ones
    assert out[1].mean() < out[4].mean()
    with pytest.raises(ValueError, match="crop fraction"):
        tta.views("five-crop", crop_fraction=1.5)


def test_unknown_tta_name():
    with pytest.raises(ValueError, match="unknown TTA"):
        tta.views("rot45")
    assert [tta.view_count(n) for n in TTA_NAMES] == \
        [len(tta.views(n)(torch.zeros(1, 3, 4, 4))) for n in TTA_NAMES]


class CornerModel(nn.Module):
    """Logits = the top-left pixel of each channel, so mirrors change the answer."""

    def __init__(self):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        return x[:, :, 0, 0] + self.dummy


def test_views_average_softmax_by_hand():
    x = torch.zeros(1, 3, 2, 2)
    x[0, :, 0, 0] = torch.tensor([1.0, 0.0, 0.0])   # seen by the identity view
    x[0, :, 0, 1] = torch.tensor([0.0, 2.0, 0.0])   # seen by the mirrored view
    loader = [(x, torch.tensor([0]))]
    precision = create_precision(False, torch.device("cpu"))
    log_mean, labels, _ = predict_logits(CornerModel(), loader, precision,
                                         views=tta.views("hflip"))
    expected = (torch.tensor([1.0, 0.0, 0.0]).softmax(0)
                + torch.tensor([0.0, 2.0, 0.0]).softmax(0)) / 2
    assert torch.allclose(log_mean.exp()[0], expected, atol=1e-6)
    assert labels.tolist() == [0]
