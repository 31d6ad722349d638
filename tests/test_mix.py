"""CutMix / MixUp on the device batch."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from fastleaf.data.mix import create_mixer, soft_targets


def numbered_batch(batch: int, size: int = 32):
    """Image ``i`` is filled with the value ``i``, label ``i``: pasted pixels show their source."""
    images = torch.arange(batch, dtype=torch.float32).view(batch, 1, 1, 1).expand(
        batch, 3, size, size).contiguous()
    return images, torch.arange(batch)


def test_off_and_bad_arguments():
    assert create_mixer(0.0, 0.0, 1.0, 10) is None
    with pytest.raises(ValueError):
        create_mixer(-1.0, 0.0, 1.0, 10)
    with pytest.raises(ValueError):
        create_mixer(1.0, 0.0, 1.5, 10)


@pytest.mark.parametrize("seed", range(8))
def test_cutmix_area_matches_lambda(seed):
    mixer = create_mixer(1.0, 0.0, 1.0, num_classes=6, seed=seed)
    images, labels = numbered_batch(6)
    mixed, targets = mixer(images, labels)
    mode, lam = mixer.last
    assert mode == "cutmix"
    assert torch.allclose(targets.sum(1), torch.ones(6))
    for i in range(6):
        partner = 5 - i
        pasted = (mixed[i, 0] == partner).float().mean().item()
        assert pasted == pytest.approx(1.0 - lam, abs=1e-6)
        assert targets[i, i].item() == pytest.approx(lam, abs=1e-6)
        assert targets[i, partner].item() == pytest.approx(1.0 - lam, abs=1e-6)


def test_mixup_blends_images_and_targets():
    mixer = create_mixer(0.0, 0.4, 1.0, num_classes=4, seed=0)
    images, labels = numbered_batch(4, size=8)
    mixed, targets = mixer(images, labels)
    mode, lam = mixer.last
    assert mode == "mixup" and 0.0 < lam < 1.0
    expected = torch.tensor([lam * i + (1 - lam) * (3 - i) for i in range(4)])
    assert torch.allclose(mixed[:, 0, 0, 0], expected, atol=1e-5)
    assert torch.allclose(targets.sum(1), torch.ones(4))
    assert targets[0, 0].item() == pytest.approx(lam, abs=1e-6)


def test_odd_batch_middle_image_stays_whole():
    mixer = create_mixer(1.0, 1.0, 1.0, num_classes=5, seed=2)
    images, labels = numbered_batch(5)
    for _ in range(6):
        mixed, targets = mixer(images, labels)
        assert torch.equal(mixed[2], images[2])
        assert torch.allclose(targets[2], torch.nn.functional.one_hot(labels[2], 5).float())


def test_prob_zero_never_mixes_and_smoothing_is_kept():
    mixer = create_mixer(1.0, 0.0, 0.0, num_classes=4, label_smoothing=0.2, seed=0)
    images, labels = numbered_batch(4)
    mixed, targets = mixer(images, labels)
    assert mixer.last[0] == "none" and torch.equal(mixed, images)
    assert torch.allclose(targets, soft_targets(labels, 4, 0.2))
    assert targets.min().item() == pytest.approx(0.05)
    assert targets.max().item() == pytest.approx(0.85)


def test_layout_and_dtype_are_kept():
    images = torch.randn(4, 3, 16, 16).half().contiguous(memory_format=torch.channels_last)
    labels = torch.tensor([0, 1, 2, 3])
    for cutmix, mixup in ((1.0, 0.0), (0.0, 1.0)):
        mixed, targets = create_mixer(cutmix, mixup, 1.0, 4, seed=0)(images, labels)
        assert mixed.dtype == torch.float16 and targets.dtype == torch.float32
        assert mixed.is_contiguous(memory_format=torch.channels_last)


def test_train_one_epoch_trains_on_the_mixed_batches():
    from fastleaf.train.loop import train_one_epoch
    from fastleaf.train.precision import create_precision

    loader = [(torch.randn(5, 3, 8, 8), torch.randint(0, 3, (5,))) for _ in range(3)]
    precision = create_precision(False, torch.device("cpu"), "auto")

    def epoch(mixer):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 3))
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        stats = train_one_epoch(model, loader, optimizer, precision, nn.CrossEntropyLoss(),
                                mixer=mixer)
        return stats, model[1].weight.detach().clone()

    plain, plain_weights = epoch(None)
    mixed, mixed_weights = epoch(create_mixer(1.0, 0.2, 1.0, num_classes=3, seed=0))
    assert mixed.images == 15 and torch.isfinite(torch.tensor(mixed.loss))
    # a loop that ignored the mixer would reproduce the plain epoch exactly
    assert mixed.loss != pytest.approx(plain.loss, rel=1e-4)
    assert not torch.allclose(mixed_weights, plain_weights)
