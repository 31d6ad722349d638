"""Device handling that must be right before a GPU is ever seen: indices, placement, worker
counts, per-device RNG state, ragged batches and the stop flag ranks agree on."""
from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from fastleaf.data.augment import AugmentSpec
from fastleaf.data.table import load_table
from fastleaf.loaders import LoaderOptions, create_loader
from fastleaf.train import resume
from fastleaf.train.distributed import AgreedStop, DistInfo, check_sync_bn
from fastleaf.utils import device as devmod
from fastleaf.errors import FastleafError
from fastleaf.utils.device import default_workers, resolve_device, same_device


@pytest.fixture
def two_gpus(monkeypatch):
    """A pretend machine with two CUDA devices, the current one being 0."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)


def test_cuda_resolves_to_an_explicit_index(two_gpus):
    assert resolve_device("cuda") == torch.device("cuda", 0)
    assert resolve_device("auto") == torch.device("cuda", 0)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(FastleafError, match="cuda:2.*2 CUDA device"):
        resolve_device("cuda:2")
    with pytest.raises(FastleafError, match="--device 'gpu'"):
        resolve_device("gpu")


def test_cuda_without_a_gpu_is_refused_and_auto_is_the_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(FastleafError, match="--device cpu"):
        resolve_device("cuda")


def test_same_device_compares_type_and_index(two_gpus):
    # a tensor made on "cuda" reports cuda:0; the two name one place
    assert same_device(torch.device("cuda"), torch.device("cuda", 0))
    assert not same_device(torch.device("cuda"), torch.device("cuda", 1))
    assert not same_device(torch.device("cuda", 0), torch.device("cpu"))
    assert same_device(torch.device("cpu"), torch.device("cpu"))


def test_workers_scale_with_the_cores_of_each_gpu(monkeypatch):
    monkeypatch.setattr(devmod, "usable_cores", lambda: 16)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert default_workers("cpu") == devmod.MAX_WORKERS_CPU
    assert default_workers(torch.device("cuda", 0)) == 15        # one core for the loop
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    assert default_workers(torch.device("cuda", 0)) == 3
    monkeypatch.setattr(devmod, "usable_cores", lambda: 1)
    assert default_workers("cpu") == 1 and default_workers(torch.device("cuda", 0)) == 1


def test_rng_state_saves_and_restores_the_training_gpu_only(two_gpus, monkeypatch):
    saved, restored = [], []

    def refuse(*a, **k):
        raise AssertionError("every visible GPU's state must not be touched")

    monkeypatch.setattr(torch.cuda, "get_rng_state_all", refuse)
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", refuse)
    monkeypatch.setattr(torch.cuda, "get_rng_state",
                        lambda device: saved.append(device) or torch.tensor([7], dtype=torch.uint8))
    monkeypatch.setattr(torch.cuda, "set_rng_state",
                        lambda state, device: restored.append((int(state[0]), device)))
    gpu1 = torch.device("cuda", 1)
    state = resume.rng_state(gpu1)
    assert saved == [gpu1] and int(state["cuda"][0]) == 7
    resume.restore_rng(state, gpu1)
    # an older checkpoint with a state per GPU of a bigger machine: this device's entry
    old = dict(state, cuda=[torch.tensor([k], dtype=torch.uint8) for k in range(4)])
    resume.restore_rng(old, gpu1)
    assert restored == [(7, gpu1), (1, gpu1)]
    assert "cuda" not in resume.rng_state(torch.device("cpu"))
    resume.restore_rng(state, torch.device("cpu"))             # a CPU resume ignores it
    assert len(restored) == 2


def test_rng_state_round_trips_the_host_generators():
    state = resume.rng_state(torch.device("cpu"))
    first = torch.rand(3)
    resume.restore_rng(state, torch.device("cpu"))
    assert torch.equal(torch.rand(3), first)


# ---- ragged batches: training drops the last partial batch, evaluation keeps every row ----

@pytest.mark.parametrize("backend", ["workers", "cache-ram", "synthetic", "dali"])
def test_training_batches_are_full_and_eval_keeps_every_row(tiny_data, backend):
    if backend == "dali":
        pytest.importorskip("nvidia.dali")
    samples = load_table(tiny_data, val_fraction=0.0).all_train.subset(range(23))
    options = LoaderOptions(batch_size=5, workers=1, drop_last=True)
    train = create_loader(samples, AugmentSpec.train_preset(32, "light"), options, backend)
    sizes = [len(y) for _, y in train]
    assert sizes == [5] * 4 and len(train) == 4 and train.num_samples == 20
    val = create_loader(samples, AugmentSpec.eval_preset(32),
                        LoaderOptions(batch_size=5, workers=1), backend)
    labels = torch.cat([y for _, y in val])
    assert labels.tolist() == samples.labels.tolist()       # 23 rows, the last batch of 3


@pytest.mark.slow
def test_a_batch_of_one_left_over_does_not_stop_training(tiny_data, tmp_path):
    from fastleaf.config import resolve_config
    from fastleaf.train.trainer import fit

    table = load_table(tiny_data, val_fraction=0.25, seed=0)
    # the paper CNN ends in BatchNorm1d, which cannot train on a batch of one
    cfg = resolve_config(data=str(tiny_data), out=str(tmp_path / "r"), model="cnn", img_size=112,
                         epochs=1, batch_size=len(table.train) - 1, workers=0, progress=False,
                         tensorboard=False, val_fraction=0.25, device="cpu", augment="none",
                         check_data=False)
    result = fit(cfg)
    assert result.last["epoch"] == 1 and result.last["acc"] >= 0


# ---- the stop flag: every rank agrees, also when the signal came after the last check ----

# (signal raised at rank 1's step, steps in the epoch, steps both ranks run)
SCENARIOS = [
    (5, 20, 8),      # inside the epoch: both ranks stop at the next agreement (step 8)
    (10, 10, 10),    # after the last agreement (step 8): only the epoch-end settle sees it
    (99, 10, 10),    # no signal: nobody stops
]


def agree_worker(rank: int, port: int, out) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        for raise_at, steps, _ in SCENARIOS:
            calls = {"n": 0}

            def local():            # only rank 1 gets the signal, at its step ``raise_at``
                return rank == 1 and calls["n"] >= raise_at

            stop = AgreedStop(local, DistInfo(rank, 2, rank, group=True), torch.device("cpu"),
                              every=4)
            done = 0
            for _ in range(steps):
                done += 1
                calls["n"] += 1
                if stop():
                    break
            out.put((raise_at, rank, done, stop.settle()))
        dist.barrier()
    finally:
        dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_ranks_agree_on_stopping():
    out = mp.get_context("spawn").Queue()
    mp.start_processes(agree_worker, args=(free_port(), out), nprocs=2, join=True,
                       start_method="spawn")
    results = sorted(out.get(timeout=30) for _ in range(2 * len(SCENARIOS)))
    expected = sorted((raise_at, rank, done, raise_at <= steps)
                      for raise_at, steps, done in SCENARIOS for rank in (0, 1))
    assert results == expected


def test_one_process_reads_its_own_flag_every_step():
    flags = iter([False, False, True])
    stop = AgreedStop(lambda: next(flags), DistInfo(), torch.device("cpu"), every=10)
    assert [stop(), stop(), stop(), stop()] == [False, False, True, True]
    assert stop.settle()


def test_sync_bn_on_cpu_processes_is_refused_with_the_reason():
    cpu = torch.device("cpu")
    with pytest.raises(FastleafError, match="--sync-bn needs CUDA"):
        check_sync_bn(True, DistInfo(0, 2, 0, group=True), cpu)
    check_sync_bn(True, DistInfo(), cpu)            # one process: nothing to synchronise
    check_sync_bn(False, DistInfo(0, 2, 0, group=True), cpu)
