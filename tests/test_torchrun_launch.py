"""``fastleaf train --nproc N`` re-runs itself under torchrun; no process is started here."""
from __future__ import annotations

import subprocess
import sys

import pytest

from fastleaf.cli import main
from fastleaf.commands.train import launch_torchrun


@pytest.fixture
def calls(monkeypatch):
    seen: list[list[str]] = []

    def fake_call(cmd, *args, **kwargs):
        seen.append(list(cmd))
        return 7                                  # the child's exit code is passed through

    monkeypatch.setattr(subprocess, "call", fake_call)
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "TORCHELASTIC_RESTART_COUNT"):
        monkeypatch.delenv(var, raising=False)
    return seen


def expected(nproc: int, rest: list[str]) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc_per_node={nproc}", "-m", "fastleaf", *rest]


def test_train_with_nproc_relaunches_under_torchrun_without_the_flag(calls, tmp_path):
    argv = ["train", "--data", str(tmp_path), "--model", "cnn", "--nproc", "2",
            "--epochs", "1", "--device", "cpu"]
    assert main(argv) == 7
    assert len(calls) == 1
    cmd = calls[0]
    assert cmd == expected(2, ["train", "--data", str(tmp_path), "--model", "cnn",
                               "--epochs", "1", "--device", "cpu"])
    assert "--nproc" not in cmd and "2" not in cmd[cmd.index("fastleaf"):]


def test_the_equals_form_is_removed_too(calls):
    assert launch_torchrun(3, ["train", "--nproc=3", "--model", "cnn"]) == 7
    assert calls == [expected(3, ["train", "--model", "cnn"])]


def test_a_value_that_only_looks_like_nproc_stays(calls):
    # only the flag and its own value go; a later "2" belongs to another flag
    launch_torchrun(2, ["train", "--nproc", "2", "--batch-size", "2"])
    assert calls == [expected(2, ["train", "--batch-size", "2"])]


def test_one_process_or_inside_torchrun_does_not_relaunch(calls, monkeypatch):
    import fastleaf.train.trainer as trainer

    class Stop(Exception):
        pass

    def fake_fit(cfg):
        raise Stop

    monkeypatch.setattr(trainer, "fit", fake_fit)
    with pytest.raises(Stop):
        main(["train", "--model", "cnn", "--nproc", "1", "--device", "cpu"])
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(Stop):
        main(["train", "--model", "cnn", "--nproc", "2", "--device", "cpu"])
    assert calls == []                            # the worker itself trains: no second launch


def test_each_restart_of_a_one_machine_run_gets_its_own_keys(monkeypatch):
    # torchrun keeps one store across restarts: the new ranks must not read the dead ranks' keys
    from datetime import timedelta

    import torch.distributed as dist

    from fastleaf.train.distributed import attempt_store

    server = dist.TCPStore("127.0.0.1", 0, 1, is_master=True, timeout=timedelta(seconds=10))
    env = {"TORCHELASTIC_USE_AGENT_STORE": "True", "MASTER_ADDR": "127.0.0.1",
           "MASTER_PORT": str(server.port), "LOCAL_WORLD_SIZE": "2"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    for attempt in ("0", "1"):
        monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", attempt)
        attempt_store(2).set("rank_1", f"address of attempt {attempt}")
    assert server.get("fastleaf/attempt_0/rank_1") == b"address of attempt 0"
    assert server.get("fastleaf/attempt_1/rank_1") == b"address of attempt 1"
    assert attempt_store(4) is None            # several machines: the counts differ per node
    monkeypatch.setenv("TORCHELASTIC_USE_AGENT_STORE", "False")
    assert attempt_store(2) is None            # ranks host their own store: torch's default
