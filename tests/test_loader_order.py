"""The base decides which rows each shard reads and in which order; the backends follow it.

The workers loader (both pipelines), cache-ram and synthetic read the base's
``epoch_order`` exactly.  DALI's reader shuffles with its own generator, so it is held to the
base's sizes and to a reproducible permutation instead.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import replace

import numpy as np
import pytest
import torch

from fastleaf.data.augment import AugmentSpec
from fastleaf.data.table import load_table
from fastleaf.loaders import LoaderOptions, Shard, create_loader
from fastleaf.loaders.base import epoch_order, shard_range, train_count
from fastleaf.loaders.workers_backend import WorkerLoader

N = 23      # prime: no shard count or batch size divides it, so wrapping and drop_last both bite


@pytest.fixture(scope="module")
def samples(tiny_data):
    rows = load_table(tiny_data, val_fraction=0.0, seed=0).all_train.subset(np.arange(N))
    # each row its own label: the order a loader reads is the labels it yields
    return replace(rows, labels=np.arange(N, dtype=np.int64))


def options(index=0, count=1, **kw) -> LoaderOptions:
    base = dict(batch_size=5, workers=0, seed=11, shard=Shard(index, count), drop_last=True)
    base.update(kw)
    return LoaderOptions(**base)


@pytest.mark.parametrize("n,count,batch,drop_last", [
    (23, 1, 4, False), (23, 2, 4, True), (23, 3, 4, False), (23, 4, 50, True),
    (24, 3, 4, False), (5, 4, 1, False), (100, 4, 7, True)])
def test_shards_cut_one_reproducible_permutation(n, count, batch, drop_last):
    def shards(seed, epoch):
        return [epoch_order(n, options(i, count, batch_size=batch, seed=seed,
                                       drop_last=drop_last), epoch) for i in range(count)]

    orders = shards(3, 2)
    per_shard = train_count(n, options(0, count, batch_size=batch, drop_last=drop_last))
    assert all(len(o) == per_shard and o.dtype == np.int64 for o in orders)
    if drop_last:
        assert per_shard % batch == 0
    seen = Counter(np.concatenate(orders).tolist())
    assert set(seen) <= set(range(n))
    total = per_shard * count
    if total >= n:
        # every row read; the rows read twice are exactly the wrap that fills the last shards
        assert len(seen) == n and sum(c - 1 for c in seen.values()) == total - n
        assert max(seen.values()) <= -(-total // n)
    else:
        assert len(seen) == total          # drop_last left rows out, but none read twice
    assert all(np.array_equal(a, b) for a, b in zip(orders, shards(3, 2)))
    if n >= 5:
        assert not all(np.array_equal(a, b) for a, b in zip(orders, shards(3, 3)))
        assert not all(np.array_equal(a, b) for a, b in zip(orders, shards(4, 2)))


def test_the_order_of_a_seed_never_changes():
    # a resumed run, or one repeated from its config, must read the rows it read before
    def order(index, count, drop_last, epoch):
        opts = LoaderOptions(batch_size=4, seed=3, shard=Shard(index, count), drop_last=drop_last)
        return epoch_order(11, opts, epoch).tolist()

    assert order(0, 2, False, 2) == [7, 1, 10, 2, 8, 5]
    assert order(1, 2, False, 2) == [0, 4, 9, 6, 3, 7]
    assert order(0, 1, True, 0) == [9, 7, 0, 2, 1, 4, 6, 10]


def test_eval_shards_are_contiguous_and_cover_every_row_once():
    for n, count in ((23, 1), (23, 2), (23, 4), (3, 4), (0, 2)):
        ranges = [shard_range(n, Shard(i, count)) for i in range(count)]
        rows = [r for start, stop in ranges for r in range(start, stop)]
        assert rows == list(range(n))


def make(samples, backend, train, opts):
    spec = AugmentSpec.train_preset(32, "light") if train else AugmentSpec.eval_preset(32)
    if backend in ("albumentations", "torchvision"):
        loader = WorkerLoader(samples, spec, opts, pipeline=backend)
        assert loader.pipeline == backend
        return loader
    return create_loader(samples, spec, opts, backend)


def read(loader, epoch=0) -> list[int]:
    loader.set_epoch(epoch)
    return torch.cat([y for _, y in loader]).tolist()


@pytest.mark.parametrize("backend", ["synthetic", "torchvision", "albumentations", "cache-ram"])
def test_every_backend_reads_the_base_order(samples, backend):
    if backend == "albumentations":
        pytest.importorskip("albumentations")
    for index in range(2):
        opts = options(index, 2)
        train = make(samples, backend, True, opts)
        pipeline = backend in ("albumentations", "torchvision")     # a pipeline of the workers
        assert train.fallback is None and train.backend == ("workers" if pipeline else backend)
        assert train.num_samples == train_count(N, opts) == 10 and len(train) == 2
        for epoch in (0, 3, 0):     # set_epoch may go back: the order is a function of it
            expected = epoch_order(N, opts, epoch)
            assert read(train, epoch) == expected.tolist() == train.order().tolist()
    rows = []
    for index in range(3):
        val = make(samples, backend, False, options(index, 3))
        rows += read(val)
        assert val.order().tolist() == list(range(*shard_range(N, Shard(index, 3))))
    assert rows == list(range(N))


def test_dali_keeps_the_base_sizes_with_its_own_reproducible_shuffle(samples):
    pytest.importorskip("nvidia.dali")
    opts = [options(i, 2, workers=1) for i in range(2)]
    first = [make(samples, "dali", True, o) for o in opts]
    assert all(t.num_samples == train_count(N, o) and len(t) == 2 for t, o in zip(first, opts))
    epochs = [[read(t, 0), read(t, 1)] for t in first]
    for shard in epochs:
        assert all(len(rows) == 10 and len(set(rows)) == 10 for rows in shard)
        assert shard[0] != shard[1]                   # reshuffled between epochs
    # shards cut one permutation of the reader's list; 23 rows wrap to 24, repeating row 0
    wrapped = set(range(2 * 12 - N))
    assert all(set(a) & set(b) <= wrapped for a, b in zip(*epochs))
    # the same seed from a fresh loader reads the same rows in the same order
    again = make(samples, "dali", True, opts[0])
    assert [read(again, 0), read(again, 1)] == epochs[0]
    with pytest.raises(NotImplementedError, match="own generator"):
        first[0].order()
    val = make(samples, "dali", False, options(1, 3, workers=1))
    assert read(val) == val.order().tolist() == list(range(*shard_range(N, Shard(1, 3))))
