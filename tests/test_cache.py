"""Decode-once caches (cache-ram, cache-gpu) and the synthetic loader keep the loader contract."""
from __future__ import annotations

import csv
import shutil

import numpy as np
import pytest
import torch

from fastleaf.config import resolve_config
from fastleaf.data.augment import AugmentSpec
from fastleaf.data.imageio import ImageDecodeError
from fastleaf.data.table import load_table
from fastleaf.loaders import LoaderOptions, Shard, create_loader
from fastleaf.loaders import cache_backend


@pytest.fixture(scope="module")
def table(tiny_data):
    return load_table(tiny_data, val_fraction=0.25, seed=0)


def options(**kw) -> LoaderOptions:
    base = dict(batch_size=7, workers=0, seed=0)
    base.update(kw)
    return LoaderOptions(**base)


def collect(loader):
    batches = list(loader)
    return torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches]), batches


def test_train_batches_have_the_contract_shapes_dtype_and_layout(table):
    spec = AugmentSpec.train_preset(64)
    loader = create_loader(table.train, spec, options(channels_last=True), "cache-ram")
    assert loader.backend == "cache-ram" and loader.num_samples == len(table.train)
    images, labels, batches = collect(loader)
    assert len(batches) == len(loader) == -(-len(table.train) // 7)
    first = batches[0][0]
    assert first.shape == (7, 3, 64, 64) and first.dtype == torch.float32
    assert first.is_contiguous(memory_format=torch.channels_last)
    assert labels.dtype == torch.int64 and images.shape[0] == len(table.train)
    assert sorted(labels.tolist()) == sorted(table.train.labels.tolist())   # each row once
    assert images.abs().max() < 10 and abs(float(images.mean())) < 3         # normalised


def test_eval_yields_every_row_once_in_order_with_a_ragged_last_batch(table):
    loader = create_loader(table.val, AugmentSpec.eval_preset(128), options(), "cache-ram")
    _, labels, batches = collect(loader)
    assert len(table.val) % 7 != 0
    assert [len(b[1]) for b in batches] == [7] * (len(table.val) // 7) + [len(table.val) % 7]
    assert labels.tolist() == table.val.labels.tolist()


def test_cache_eval_tensors_equal_the_workers_eval_tensors(table):
    # 128-px JPEGs read at 128 px: no resize, the same decoder -> equal up to float rounding
    spec = AugmentSpec.eval_preset(128)
    cached, labels_c, _ = collect(create_loader(table.val, spec, options(), "cache-ram"))
    streamed, labels_t, _ = collect(create_loader(table.val, spec, options(), "workers"))
    assert torch.equal(labels_c, labels_t)
    assert torch.allclose(cached, streamed, atol=1e-5, rtol=0)   # tolerance: 1e-5


def test_set_epoch_reshuffles_reproducibly(table):
    spec = AugmentSpec.train_preset(32, "light")

    def epoch(n):
        loader = create_loader(table.train, spec, options(seed=5), "cache-ram")
        loader.set_epoch(n)
        return collect(loader)[:2]

    (a_img, a_lab), (b_img, b_lab), (c_img, c_lab) = epoch(3), epoch(3), epoch(4)
    assert torch.equal(a_img, b_img) and torch.equal(a_lab, b_lab)
    assert not torch.equal(a_lab, c_lab) or not torch.equal(a_img, c_img)


def test_shards_split_train_and_eval_rows(table):
    spec_train, spec_eval = AugmentSpec.train_preset(32, "none"), AugmentSpec.eval_preset(32)
    shards = [Shard(i, 2) for i in range(2)]
    train = [create_loader(table.train, spec_train, options(shard=s), "cache-ram") for s in shards]
    orders = [t.order() for t in train]
    assert len(orders[0]) == len(orders[1]) == train[0].num_samples
    if len(table.train) % 2 == 0:
        assert not set(orders[0]) & set(orders[1])
    assert set(orders[0]) | set(orders[1]) == set(range(len(table.train)))
    evals = [create_loader(table.val, spec_eval, options(shard=s), "cache-ram") for s in shards]
    labels = torch.cat([collect(e)[1] for e in evals])
    assert labels.tolist() == table.val.labels.tolist()


def test_repeated_rows_are_decoded_once(table):
    samples = table.train.repeat(3 * len(table.train))
    loader = create_loader(samples, AugmentSpec.eval_preset(32), options(), "cache-ram")
    assert loader.images.shape == (len(table.train), 3, 32, 32)
    assert loader.num_samples == len(samples)
    images, labels, _ = collect(loader)
    n = len(table.train)
    assert torch.equal(images[:n], images[n:2 * n]) and torch.equal(labels[:n], labels[2 * n:])


def test_a_set_too_large_for_ram_falls_back_to_the_workers(table, monkeypatch):
    monkeypatch.setattr(cache_backend, "available_ram_bytes", lambda: 10_000)
    loader = create_loader(table.val, AugmentSpec.eval_preset(32), options(), "cache-ram")
    assert loader.backend == "workers"
    assert "does not fit" in loader.fallback and "GiB" in loader.fallback
    assert collect(loader)[1].tolist() == table.val.labels.tolist()


def test_cache_gpu_without_cuda_is_an_error_naming_the_fallback(table):
    with pytest.raises(ValueError, match="cache-ram"):
        create_loader(table.val, AugmentSpec.eval_preset(32), options(), "cache-gpu")


@pytest.mark.gpu
def test_cache_gpu_keeps_the_set_on_the_gpu(table):
    device = torch.device("cuda")
    loader = create_loader(table.train, AugmentSpec.train_preset(64),
                           options(device=device, channels_last=True), "cache-gpu")
    images, labels, _ = collect(loader)
    assert loader.images.device.type == "cuda" and images.device.type == "cuda"
    assert images.is_contiguous(memory_format=torch.channels_last)
    assert sorted(labels.tolist()) == sorted(table.train.labels.tolist())


def test_a_broken_image_names_the_csv_row(tiny_data, tmp_path):
    data = tmp_path / "data"
    (data / "images").mkdir(parents=True)
    rows = list(csv.reader(open(tiny_data / "train.csv")))[:13]
    for image, _ in rows[1:]:
        shutil.copy(tiny_data / image, data / image)
    (data / rows[5][0]).write_bytes(b"\xff\xd8\xff not a jpeg")
    with open(data / "train.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)
    samples = load_table(data, val_fraction=0.0).all_train
    with pytest.raises(ImageDecodeError, match=r"train.csv row 6"):
        create_loader(samples, AugmentSpec.eval_preset(32), options(), "cache-ram")


def test_synthetic_loader_keeps_sizes_order_and_layout(table):
    loader = create_loader(table.val, AugmentSpec.eval_preset(40),
                           options(channels_last=True, dtype=torch.bfloat16), "synthetic")
    images, labels, batches = collect(loader)
    assert labels.tolist() == table.val.labels.tolist() and len(batches) == len(loader)
    assert images.shape == (len(table.val), 3, 40, 40) and images.dtype == torch.bfloat16
    assert batches[0][0].is_contiguous(memory_format=torch.channels_last)


@pytest.mark.slow
def test_fit_with_the_ram_cache_writes_metrics(tiny_data, tmp_path):
    from fastleaf.train.trainer import fit

    cfg = resolve_config(data=str(tiny_data), out=str(tmp_path / "run"), model="cnn",
                         img_size=112, epochs=1, batch_size=16, loader="cache-ram", workers=0,
                         progress=False, tensorboard=False, val_fraction=0.25)
    result = fit(cfg)
    rows = list(csv.DictReader(open(result.run_dir / "metrics.csv")))
    assert len(rows) == 1 and float(rows[0]["img_per_s"]) > 0
    assert result.loader == "cache-ram"
    assert np.isfinite(float(rows[0]["val_loss"]))


def test_pinned_gather_yields_every_batch_in_order_and_stops_cleanly():
    import threading

    from fastleaf.loaders.pinned import PinnedGather

    store = torch.arange(40 * 6, dtype=torch.uint8).view(40, 2, 3)
    index = torch.randperm(40, generator=torch.Generator().manual_seed(0))[:23]
    # the logic on the CPU: unpinned buffers, consumed before they are handed back
    gather = PinnedGather(store, index, 5, torch.device("cpu"), depth=2, pin=False)
    batches = [b.clone() for b in gather]
    assert [len(b) for b in batches] == [5, 5, 5, 5, 3]
    assert torch.equal(torch.cat(batches), store[index])
    for b in gather:          # a consumer that stops early leaves no thread behind
        break
    del b
    assert not any(t.name == "fastleaf-pinned-gather" for t in threading.enumerate())
