"""The CUDA paths: cache-gpu, fp16 with the grad scaler, bf16, compile, one-process NCCL DDP,
and the host syncs of loaders and the training loop.  Every test here needs a CUDA device."""
from __future__ import annotations

import csv
import os
import subprocess
import sys

import pytest
import torch

from fastleaf.config import resolve_config
from fastleaf.data.augment import AugmentSpec
from fastleaf.data.table import load_table
from fastleaf.loaders import LoaderOptions, create_loader
from fastleaf.train.checkpoint import load_checkpoint
from fastleaf.train.trainer import fit

pytestmark = pytest.mark.gpu


def gpu_config(data, out, **kw):
    base = dict(data=str(data), out=str(out), model="cnn", img_size=112, epochs=1,
                batch_size=16, lr=1e-3, augment="kaggle", workers=2, progress=False,
                tensorboard=False, val_fraction=0.25, device="cuda", amp=True,
                channels_last=True)
    base.update(kw)
    return resolve_config(**base)


def metric_rows(run_dir):
    return list(csv.DictReader(open(run_dir / "metrics.csv")))


@pytest.mark.parametrize("device", ["cuda", "cuda:0"])
@pytest.mark.parametrize("backend", ["cache-gpu", "cache-ram"])
def test_cache_loaders_on_cuda_with_or_without_an_index(tiny_data, backend, device):
    samples = load_table(tiny_data, val_fraction=0.0).all_train
    options = LoaderOptions(batch_size=8, device=torch.device(device), channels_last=True,
                            dtype=torch.bfloat16, workers=2, drop_last=True)
    loader = create_loader(samples, AugmentSpec.train_preset(64), options, backend)
    assert loader.backend == backend
    for images, labels in loader:
        assert images.is_cuda and labels.is_cuda and images.dtype == torch.bfloat16
        assert images.shape == (8, 3, 64, 64)
        assert images.is_contiguous(memory_format=torch.channels_last)
        assert torch.isfinite(images.float()).all()


def test_cache_gpu_training_with_device_cuda(tiny_data, tmp_path):
    result = fit(gpu_config(tiny_data, tmp_path / "r", cache="gpu", amp_dtype="bf16"))
    assert result.loader == "cache-gpu" and len(metric_rows(result.run_dir)) == 1


def test_fp16_with_the_grad_scaler_trains_and_resumes(tiny_data, tmp_path):
    run = tmp_path / "fp16"
    fit(gpu_config(tiny_data, run, amp_dtype="fp16", loader="workers", grad_clip=1.0))
    state = load_checkpoint(run / "last.pt")
    assert state["scaler"]["scale"] > 0 and state["rng"]["cuda"].dtype == torch.uint8
    result = fit(gpu_config(tiny_data, run, amp_dtype="fp16", loader="workers",
                            grad_clip=1.0, epochs=2, resume=str(run)))
    rows = metric_rows(run)
    assert [int(r["epoch"]) for r in rows] == [1, 2] and result.last["epoch"] == 2
    assert all(float(r["train_loss"]) == float(r["train_loss"]) for r in rows)   # no NaN


def test_bf16_training_beats_chance(tiny_data, tmp_path):
    result = fit(gpu_config(tiny_data, tmp_path / "bf16", amp_dtype="bf16", epochs=4,
                            augment="light", cache="gpu"))
    assert result.best["acc"] > 2.5 / 6


def test_compile_on_cuda(tiny_data, tmp_path):
    result = fit(gpu_config(tiny_data, tmp_path / "c", compile=True, epochs=2, cache="gpu",
                            amp_dtype="bf16"))
    rows = metric_rows(result.run_dir)
    assert len(rows) == 2
    state = load_checkpoint(result.run_dir / "last.pt")
    assert not any(k.startswith("_orig_mod") for k in state["model"])


def test_one_process_nccl_ddp_run(tiny_data, tmp_path):
    # with --sync-bn and a head-only epoch: the frozen backbone's norms are the SyncBatchNorm
    # layers the conversion put in, held in eval mode, so their statistics stay as initialised
    out = tmp_path / "ddp"
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1",
         "-m", "fastleaf", "train", "--data", str(tiny_data), "--epochs", "1", "--out", str(out),
         "--model", "cnn", "--img-size", "112", "--batch-size", "16", "--workers", "2",
         "--device", "cuda", "--cache", "gpu", "--no-progress", "--no-tensorboard",
         "--sync-bn", "--freeze-epochs", "1"],
        env=dict(os.environ, COLUMNS="200"), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "x1 processes" in done.stdout
    assert [r["epoch"] for r in metric_rows(out)] == ["1"]
    means = [v for k, v in load_checkpoint(out / "last.pt")["model"].items()
             if k.endswith("running_mean")]
    assert means and all(torch.equal(v, torch.zeros_like(v)) for v in means)


# ---- host syncs: none per batch in the loaders, one per logged interval in the loop ----

# seen on an H200 (torch 2.11): one sync in 4 batches, surfacing on the training thread from
# C++ outside a Python call; `benchmarks/sync_probe.py --locate` finds where it is made
# (benchmarks/results/gpu-nvidia-h200.md)
WORKERS_SYNC = pytest.mark.xfail(reason="one host sync in 4 batches, caller not yet traced",
                                     strict=False)


# DALI is not in this list: its waits happen inside its own engine (C++ threads and CUDA
# events), which torch's sync debug mode never sees, so the test would pass whatever DALI does.
# DALI is judged instead by its load-mode efficiency against synthetic batches in
# benchmarks/gpu_check.sh (the bench rows DALI / cache-gpu / synthetic).
@pytest.mark.parametrize("backend", [pytest.param("workers", marks=WORKERS_SYNC),
                                     "cache-ram", "cache-gpu", "synthetic"])
def test_loaders_do_not_sync_per_batch(tiny_data, backend):
    from fastleaf.bench.syncs import loader_syncs

    samples = load_table(tiny_data, val_fraction=0.0).all_train.repeat(160)
    options = LoaderOptions(batch_size=16, device=torch.device("cuda"), channels_last=True,
                            dtype=torch.bfloat16, workers=2, drop_last=True)
    loader = create_loader(samples, AugmentSpec.train_preset(112), options, backend)
    syncs = loader_syncs(loader, batches=4)
    # the training thread must not wait; a helper thread's sync (the DataLoader's pin-memory
    # thread) stalls only that thread and is reported by benchmarks/sync_probe.py
    assert syncs.main_per_batch == 0, syncs.sites


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_training_loop_syncs_once_per_logged_interval(amp):
    from fastleaf.bench.syncs import expected_loop_syncs, loop_syncs
    from fastleaf.models import create_model
    from fastleaf.train.loop import SYNC_EVERY
    from fastleaf.train.precision import create_precision

    device = torch.device("cuda", torch.cuda.current_device())
    model = create_model("resnet18", 10).to(device).to(memory_format=torch.channels_last)
    precision = create_precision(True, device, amp)
    x = torch.randn(16, 3, 64, 64, device=device, dtype=precision.dtype)
    batch = (x.contiguous(memory_format=torch.channels_last),
             torch.randint(0, 10, (16,), device=device))
    steps = 2 * SYNC_EVERY
    count = loop_syncs(model, [batch] * steps, precision, on_step=lambda *a: None)
    assert count <= expected_loop_syncs(steps, SYNC_EVERY)
