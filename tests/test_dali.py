"""DALI backend: CPU-only pipelines here (``device_id=None``); the mixed-decoder test needs CUDA."""
from __future__ import annotations

import shutil
import sys

import numpy as np
import pytest
import torch

from fastleaf.data.augment import AugmentSpec
from fastleaf.data.imageio import ImageDecodeError
from fastleaf.data.table import load_table
from fastleaf.loaders import LoaderOptions, Shard, create_loader, resolve_backend
from fastleaf.loaders.dali_backend import DaliUnavailable

CPU = torch.device("cpu")


def needs_dali():
    pytest.importorskip("nvidia.dali")


def shuffled(samples, seed=1):
    """Rows in a scrambled order, so an order check cannot pass by class-sorted luck."""
    return samples.subset(np.random.default_rng(seed).permutation(len(samples)))


def collect(loader):
    batches = [(x, y) for x, y in loader]
    return torch.cat([x.float() for x, _ in batches]), torch.cat([y for _, y in batches]), batches


def test_resolve_backend_without_dali(monkeypatch):
    # a None entry in sys.modules makes ``import nvidia.dali`` raise ImportError
    monkeypatch.setitem(sys.modules, "nvidia.dali", None)
    with pytest.raises(DaliUnavailable, match="--loader workers"):
        resolve_backend("dali", CPU)
    backend, why = resolve_backend("auto", torch.device("cuda"))
    assert backend == "workers" and "DALI unavailable" in why


def test_auto_on_cuda_without_dali_caches_on_the_gpu_when_the_set_fits(monkeypatch):
    from fastleaf.loaders import cache_backend

    monkeypatch.setitem(sys.modules, "nvidia.dali", None)
    free = {"bytes": 80 * 2**30}
    monkeypatch.setattr(cache_backend, "available_gpu_bytes", lambda device: free["bytes"])
    cuda = torch.device("cuda")
    backend, why = resolve_backend("auto", cuda, images=18353, size=224)
    assert backend == "cache-gpu" and "fit in free GPU memory" in why and "2.57 GiB" in why
    free["bytes"] = 2**30                                  # a small card: stream instead
    backend, why = resolve_backend("auto", cuda, images=18353, size=224)
    assert backend == "workers" and "do not fit" in why
    assert resolve_backend("auto", cuda)[0] == "workers"   # prediction: images read once


def test_resolve_backend_auto_and_dali_cpu():
    needs_dali()
    assert resolve_backend("auto", CPU)[0] == "workers"
    assert resolve_backend("auto", torch.device("cuda")) == ("dali", "auto: CUDA device and "
                                                             "DALI available")
    backend, why = resolve_backend("dali", CPU)
    assert backend == "dali" and "CPU-only" in why


def test_train_batches_shape_dtype_layout(tiny_data):
    needs_dali()
    samples = load_table(tiny_data, val_fraction=0.2, seed=0).train
    options = LoaderOptions(batch_size=16, channels_last=True, workers=1, seed=3,
                            dtype=torch.float16)
    loader = create_loader(samples, AugmentSpec.train_preset(112), options, "dali")
    orders = []
    for epoch in (1, 2):
        loader.set_epoch(epoch)
        _, labels, batches = collect(loader)
        assert len(batches) == len(loader) == -(-len(samples) // 16)
        for images, y in batches:
            assert images.shape[1:] == (3, 112, 112) and images.dtype == torch.float16
            assert images.is_contiguous(memory_format=torch.channels_last)
            assert y.dtype == torch.int64
        # each row once per epoch: the label multiset is the split's
        assert sorted(labels.tolist()) == sorted(samples.labels.tolist())
        orders.append(labels.tolist())
    assert orders[0] != orders[1]       # reshuffled between epochs


def test_eval_exactly_once_ragged_last_batch(tiny_data):
    needs_dali()
    table = load_table(tiny_data, val_fraction=0.2, seed=0)
    samples = shuffled(table.all_train)
    assert len(samples) % 7 != 0
    loader = create_loader(samples, AugmentSpec.eval_preset(112),
                           LoaderOptions(batch_size=7, workers=1), "dali")
    for _ in range(2):                  # a second pass starts clean too
        _, labels, batches = collect(loader)
        assert [len(y) for _, y in batches][-1] == len(samples) % 7
        assert labels.tolist() == samples.labels.tolist()
    assert loader.num_samples == len(samples) and len(loader) == len(batches)
    test = create_loader(table.test, AugmentSpec.eval_preset(112),
                         LoaderOptions(batch_size=4, workers=1), "dali")
    _, labels, _ = collect(test)
    assert labels.tolist() == [-1] * len(table.test)


def test_eval_matches_the_workers_loader(tiny_data):
    """Same rows, same order, nearly the same pixels.

    Both decode with libjpeg-turbo, so at the native 128 px (no resize) the tensors agree to
    one uint8 level (0.02 after normalising by std 0.225 * 255; measured: identical).  Resizing
    to 112 px uses two different antialiased linear filters (DALI's and torch's) that round
    differently: measured at most 1 level, bounded here by 3 levels (0.06) and 0.01 on average.
    """
    needs_dali()
    samples = shuffled(load_table(tiny_data, val_fraction=0.2, seed=0).val)
    for size, max_diff in ((128, 0.02), (112, 0.06)):
        spec = AugmentSpec.eval_preset(size)
        options = LoaderOptions(batch_size=5, workers=0)
        dali_x, dali_y, _ = collect(create_loader(samples, spec, options, "dali"))
        tv_x, tv_y, _ = collect(create_loader(samples, spec, options, "workers"))
        assert dali_y.tolist() == tv_y.tolist() == samples.labels.tolist()
        diff = (dali_x - tv_x).abs()
        assert diff.max() <= max_diff and diff.mean() < 0.01, (size, diff.max(), diff.mean())


def test_any_input_size_is_resized(tiny_data):
    needs_dali()
    samples = load_table(tiny_data, val_fraction=0.2, seed=0).val
    for spec in (AugmentSpec.eval_preset(160), AugmentSpec.train_preset(96)):
        images, _, _ = collect(create_loader(samples, spec,
                                             LoaderOptions(batch_size=8, workers=1), "dali"))
        assert images.shape == (len(samples), 3, spec.size, spec.size)


def test_shards_split_training_and_eval(tiny_data):
    needs_dali()
    samples = load_table(tiny_data, val_fraction=0.2, seed=0).train
    train_rows, eval_rows, counts = [], [], set()
    for index in range(3):
        options = LoaderOptions(batch_size=4, workers=1, shard=Shard(index, 3), seed=5)
        train = create_loader(samples, AugmentSpec.train_preset(112), options, "dali")
        _, labels, _ = collect(train)
        counts.add((len(train), len(labels)))
        train_rows += labels.tolist()
        val = create_loader(samples, AugmentSpec.eval_preset(112), options, "dali")
        eval_rows += collect(val)[1].tolist()
    assert len(counts) == 1             # equal batch counts on every rank
    assert sorted(train_rows) == sorted(samples.labels.tolist())
    assert eval_rows == samples.labels.tolist()   # contiguous shards, table order


def copy_data(tiny_data, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(tiny_data, root)
    table = load_table(root, val_fraction=0.2, seed=0)
    return table.val, table.val.paths[3]


def test_corrupt_jpeg_named_in_error(tiny_data, tmp_path):
    needs_dali()
    samples, bad = copy_data(tiny_data, tmp_path)
    bad.write_bytes(b"\xff\xd8\xff\xe0" + bytes(300))   # a JPEG header, then nothing
    with pytest.raises(ImageDecodeError, match=bad.name) as err:
        loader = create_loader(samples, AugmentSpec.eval_preset(112),
                               LoaderOptions(batch_size=4, workers=1), "dali")
        collect(loader)
    assert "row" in str(err.value)


def test_non_image_named_before_the_pipeline_starts(tiny_data, tmp_path):
    needs_dali()
    samples, bad = copy_data(tiny_data, tmp_path)
    bad.write_bytes(b"GIF89a" + bytes(100))
    with pytest.raises(ImageDecodeError, match=f"{bad.name}.*--loader workers"):
        create_loader(samples, AugmentSpec.eval_preset(112),
                      LoaderOptions(batch_size=4, workers=1), "dali")


def test_fit_with_dali_on_cpu(tiny_data, tmp_path):
    needs_dali()
    from fastleaf.config import resolve_config
    from fastleaf.train.trainer import fit

    cfg = resolve_config(data=str(tiny_data), model="cnn", loader="dali", epochs=1, img_size=112,
                         batch_size=16, workers=1, device="cpu", cutmix=1.0, progress=False,
                         tensorboard=False, out=str(tmp_path / "run"))
    result = fit(cfg)
    assert result.loader == "dali"
    lines = (result.run_dir / "metrics.csv").read_text().strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("epoch")


@pytest.mark.gpu
def test_gpu_pipeline_on_cuda(tiny_data):
    needs_dali()
    samples = shuffled(load_table(tiny_data, val_fraction=0.2, seed=0).val)
    device = torch.device("cuda")
    loader = create_loader(samples, AugmentSpec.train_preset(112),
                           LoaderOptions(batch_size=5, device=device, channels_last=True,
                                         dtype=torch.float16, workers=2), "dali")
    for images, labels in loader:
        assert images.is_cuda and labels.is_cuda and images.dtype == torch.float16
        assert images.is_contiguous(memory_format=torch.channels_last)
    spec = AugmentSpec.eval_preset(112)
    gpu_x, gpu_y, _ = collect(create_loader(samples, spec, LoaderOptions(batch_size=5,
                                                                         device=device), "dali"))
    cpu_x, cpu_y, _ = collect(create_loader(samples, spec, LoaderOptions(batch_size=5), "dali"))
    assert gpu_y.tolist() == cpu_y.tolist() == samples.labels.tolist()
    # nvJPEG with libjpeg-turbo's chroma upsampling (jpeg_fancy_upsampling) against
    # libjpeg-turbo itself: only the IDCTs' rounding may differ
    assert (gpu_x.cpu() - cpu_x).abs().mean() < 0.01


def test_failures_not_about_decoding_keep_dalis_message_and_scan_nothing(monkeypatch, tiny_data):
    from fastleaf.loaders import dali_backend

    scanned = []
    monkeypatch.setattr(dali_backend, "find_bad_image",
                        lambda samples, rows: scanned.append(1) or None)
    samples = load_table(tiny_data, val_fraction=0.2, seed=0).val
    oom = RuntimeError("Critical error in pipeline:\nError in MIXED operator "
                       "`nvidia.dali.fn.decoders.image`\nencountered:\n\nCUDA allocation failed: "
                       "out of memory while allocating 1073741824 bytes\nCritical error in "
                       "pipeline:")
    err = dali_backend.explain_failure(oom, samples, range(len(samples)))
    assert not scanned
    text = str(err)
    assert "out of memory while allocating 1073741824 bytes" in text and "\n" not in text
    assert text.count("Critical error in pipeline:") == 1 and "--loader workers" in text
    decode = RuntimeError("Error in CPU operator `nvidia.dali.fn.decoders.image`\n"
                          "nvImageCodec failure: '#3'")
    err = dali_backend.explain_failure(decode, samples, range(len(samples)))
    assert scanned == [1] and "nvImageCodec failure: '#3'" in str(err)
