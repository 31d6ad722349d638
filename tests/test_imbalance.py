"""Class imbalance: ``--class-weights balanced`` and ``--sampler balanced``."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from sklearn.utils.class_weight import compute_class_weight

from fastleaf.config import resolve_config
from fastleaf.data.augment import AugmentSpec
from fastleaf.data.table import load_table
from fastleaf.loaders import LoaderOptions, Shard, create_loader
from fastleaf.loaders.base import balanced_weights, epoch_order
from fastleaf.train.build import class_weights, training_loss

SKEWED = np.array([0] * 80 + [1] * 15 + [2] * 5)


def test_balanced_epochs_draw_every_class_about_equally_and_shard_one_draw():
    options = LoaderOptions(batch_size=10, seed=3, balanced=True)
    draws = np.concatenate([epoch_order(len(SKEWED), options, epoch, SKEWED)
                            for epoch in range(30)])
    share = np.bincount(SKEWED[draws], minlength=3) / len(draws)
    assert np.allclose(share, 1 / 3, atol=0.04), share           # plain: 0.80 / 0.15 / 0.05
    once = epoch_order(len(SKEWED), options, 5, SKEWED)
    assert np.array_equal(once, epoch_order(len(SKEWED), options, 5, SKEWED))   # per (seed, epoch)
    assert not np.array_equal(once, epoch_order(len(SKEWED), options, 6, SKEWED))
    # two processes cut one draw: together they hold the whole epoch's rows, in equal shares
    parts = [epoch_order(len(SKEWED), replace(options, shard=Shard(i, 2)), 5, SKEWED)
             for i in range(2)]
    assert len(parts[0]) == len(parts[1]) == 50
    assert sorted(np.concatenate(parts).tolist()) == sorted(once.tolist())
    # without the option the order stays one permutation
    plain = epoch_order(len(SKEWED), replace(options, balanced=False), 5, SKEWED)
    assert sorted(plain.tolist()) == list(range(len(SKEWED)))
    assert balanced_weights(SKEWED).sum() == pytest.approx(1.0)


def test_class_weights_are_scikit_learns_balanced_ones():
    labels = np.array([0, 0, 0, 0, 2, 2, 3])                   # class 1 has no training rows
    weights = class_weights(labels, 4)
    expected = compute_class_weight("balanced", classes=np.array([0, 2, 3]), y=labels)
    assert np.allclose(weights[[0, 2, 3]], expected) and weights[1] == 1.0


def test_the_training_loss_carries_the_weights(tiny_data):
    table = load_table(tiny_data, val_fraction=0.2, seed=0)
    cpu = torch.device("cpu")
    plain = training_loss(resolve_config(data=str(tiny_data)), table, cpu)
    weighted = training_loss(resolve_config(data=str(tiny_data), class_weights="balanced"),
                             table, cpu)
    assert plain.weight is None
    assert torch.allclose(weighted.weight.double(), torch.as_tensor(
        class_weights(table.train.labels, table.num_classes)))


@pytest.mark.parametrize("backend", ["workers", "cache-ram"])
def test_a_balanced_training_loader_reads_the_base_draw(tiny_data, backend):
    samples = load_table(tiny_data, val_fraction=0.2, seed=0).train
    options = LoaderOptions(batch_size=4, workers=0, seed=1, balanced=True)
    loader = create_loader(samples, AugmentSpec.train_preset(112, "none"), options, backend)
    loader.set_epoch(2)
    labels = torch.cat([y for _, y in loader]).tolist()
    expected = samples.labels[epoch_order(len(samples), options, 2, samples.labels)]
    assert labels == expected.tolist()


def test_dali_refuses_a_balanced_epoch_so_auto_moves_on(tiny_data):
    pytest.importorskip("nvidia.dali")
    from fastleaf.errors import BackendFailed

    samples = load_table(tiny_data, val_fraction=0.2, seed=0).train
    with pytest.raises(BackendFailed, match="--sampler balanced"):
        create_loader(samples, AugmentSpec.train_preset(112), LoaderOptions(
            batch_size=4, workers=1, balanced=True), "dali")


@pytest.mark.slow
def test_balanced_sampler_and_accumulation_under_two_gloo_processes(tiny_data, tmp_path):
    from test_recovery import train_on_two_processes

    rows = train_on_two_processes(tiny_data, tmp_path / "ddp", "--epochs", "2", "--sampler",
                                  "balanced", "--class-weights", "balanced", "--grad-accum",
                                  "2", "--no-amp")
    assert [r["epoch"] for r in rows] == ["1", "2"]
    import yaml

    saved = yaml.safe_load((tmp_path / "ddp" / "config.yaml").read_text())
    assert (saved["sampler"], saved["class_weights"], saved["grad_accum"]) == (
        "balanced", "balanced", 2)
