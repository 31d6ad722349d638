"""Data-parallel training, kill-and-resume and signal handling, in real subprocesses."""
import csv
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from fastleaf.config import resolve_config
from fastleaf.data.augment import AugmentSpec
from fastleaf.data.table import load_table
from fastleaf.loaders import LoaderOptions
from fastleaf.predict.run_folder import open_run
from fastleaf.train.checkpoint import CheckpointError, load_checkpoint
from fastleaf.train.loop import evaluate
from fastleaf.train.metrics import classification_metrics
from fastleaf.train.precision import create_precision
from fastleaf.train.trainer import fit

COMMON = ["--model", "cnn", "--img-size", "112", "--batch-size", "8", "--workers", "0",
          "--device", "cpu", "--no-progress", "--no-tensorboard", "--no-check-data"]


def flat(text):
    return " ".join(text.split())      # rich wraps long lines at the terminal width


def fastleaf(*args, **kw):
    env = dict(os.environ, OMP_NUM_THREADS="1", COLUMNS="200")
    return subprocess.Popen([sys.executable, "-m", "fastleaf", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def metric_rows(run):
    path = run / "metrics.csv"
    return list(csv.DictReader(open(path))) if path.is_file() else []


def wait_for_rows(proc, run, n, timeout=240):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if len(metric_rows(run)) >= n:
            return
        if proc.poll() is not None:
            pytest.fail(f"training ended early:\n{proc.stdout.read()}")
        time.sleep(0.05)
    proc.kill()
    pytest.fail("training too slow to reach the epoch")


def train_on_two_processes(data, out, *args):
    """``fastleaf train`` under torchrun with two CPU processes; the run's metric rows."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         "-m", "fastleaf", "train", "--data", str(data), "--out", str(out), *args, *COMMON],
        env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return metric_rows(out)


@pytest.mark.slow
@pytest.mark.parametrize("ema", [[], ["--model-ema"]], ids=["raw", "ema"])
def test_ddp_two_cpu_processes_match_single_process_eval(tiny_data, tmp_path, ema):
    out = tmp_path / "ddp"
    # with an EMA, best.pt holds the better of the two, scored with rank 0's norm statistics;
    # the CPU's own default precision (bf16 on native-bf16 CPUs), which the check below reads
    rows = train_on_two_processes(tiny_data, out, "--epochs", "1", *ema)
    assert [r["epoch"] for r in rows] == ["1"]
    # the same weights evaluated by one process over the whole validation split, prepared as
    # the run's own validation was: its precision (bf16 on CPUs with native bf16), layout and
    # batch size, all read from its config
    run = open_run(out)
    cpu = torch.device("cpu")
    cfg = run.config
    table = run.table()
    loader = run.eval_loader(table.val, cpu, workers=0)
    precision = create_precision(cfg.amp, cpu, cfg.amp_dtype)
    loss, preds, labels, _ = evaluate(run.build_model(cpu, channels_last=cfg.channels_last),
                                      loader, precision, torch.nn.CrossEntropyLoss())
    assert len(labels) == len(table.val)
    single = classification_metrics(labels, preds)
    for key in ("acc", "f1_macro", "kappa"):
        assert float(rows[0][key]) == pytest.approx(single[key], abs=1e-6)
    assert float(rows[0]["val_loss"]) == pytest.approx(loss, rel=1e-4)


@pytest.mark.slow
def test_ddp_trains_the_head_alone_first(tiny_data, tmp_path):
    # DDP goes on when the backbone stops needing gradients, and again when it starts
    rows = train_on_two_processes(tiny_data, tmp_path / "ddp", "--epochs", "2",
                                  "--freeze-epochs", "1")
    assert [r["epoch"] for r in rows] == ["1", "2"]


@pytest.mark.slow
def test_sigkill_then_resume_continues_at_the_right_epoch(tiny_data, tmp_path):
    run = tmp_path / "run"
    proc = fastleaf("train", "--data", str(tiny_data), "--epochs", "50", "--out", str(run), *COMMON)
    wait_for_rows(proc, run, 2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    last = load_checkpoint(run / "last.pt")["epoch"]
    done_rows = len(metric_rows(run))
    assert last >= 1 and done_rows in (last, last + 1)   # killed between the two writes at worst
    resumed = fastleaf("train", "--resume", str(run), "--epochs", str(last + 2))
    output, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, output
    assert f"resumed at epoch {last + 1}" in flat(output)
    epochs = [int(r["epoch"]) for r in metric_rows(run)]
    assert epochs == list(range(1, last + 3))            # no gap, no duplicate
    assert load_checkpoint(run / "last.pt")["epoch"] == last + 2


@pytest.mark.slow
def test_sigterm_saves_last_and_exits_with_hint(tiny_data, tmp_path):
    run = tmp_path / "run"
    proc = fastleaf("train", "--data", str(tiny_data), "--epochs", "50", "--out", str(run), *COMMON)
    wait_for_rows(proc, run, 1)
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM
    assert f"fastleaf train --resume {run}" in flat(output)
    state = load_checkpoint(run / "last.pt")
    assert state["epoch"] == len(metric_rows(run)) and "optimizer" in state


@pytest.mark.slow
def test_resume_in_process_restores_optimizer_and_best(tiny_data, tmp_path):
    run = tmp_path / "r"
    base = dict(data=str(tiny_data), out=str(run), model="cnn", img_size=112, batch_size=16,
                workers=0, progress=False, tensorboard=False, check_data=False, device="cpu")
    fit(resolve_config(epochs=1, **base))
    first = load_checkpoint(run / "last.pt")
    result = fit(resolve_config(epochs=2, resume=str(run), **{**base, "out": str(run)}))
    assert [int(r["epoch"]) for r in metric_rows(run)] == [1, 2]
    # the best epoch is the one with the highest acc + F1 + kappa, whichever it is
    rows = metric_rows(run)
    sums = [float(r["sum"]) for r in rows]
    assert result.best_epoch == int(rows[sums.index(max(sums))]["epoch"])
    assert load_checkpoint(run / "best.pt")["epoch"] == result.best_epoch
    second = load_checkpoint(run / "last.pt")
    assert second["optimizer"]["state"][0]["step"] > first["optimizer"]["state"][0]["step"]


def test_checkpoint_with_pickled_payload_is_refused(tmp_path):
    class Payload:
        def __reduce__(self):
            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))

    bad = tmp_path / "evil.pt"
    torch.save({"model_name": "cnn", "model": {}, "x": Payload()}, bad)
    with pytest.raises(CheckpointError, match="refused"):
        load_checkpoint(bad)
    assert not (tmp_path / "pwned").exists()


def test_nothing_to_resume_is_a_clear_error(tmp_path):
    from fastleaf.train.resume import resume_config

    with pytest.raises(CheckpointError, match="nothing to resume"):
        resume_config(tmp_path)


def interrupt_then_resume(data, tmp_path, monkeypatch, stop_in_epoch, **options):
    """An uninterrupted 2-epoch run and one stopped by SIGINT in ``stop_in_epoch`` and
    resumed: their final ``last.pt`` states."""
    from fastleaf.train import trainer
    from fastleaf.train.signals import TrainingInterrupted

    base = {**dict(data=str(data), model="cnn", img_size=112, batch_size=16, epochs=2,
                   workers=0, progress=False, tensorboard=False, check_data=False,
                   device="cpu", augment="light", seed=3), **options}
    fit(resolve_config(out=str(tmp_path / "whole"), **base))
    whole = load_checkpoint(tmp_path / "whole" / "last.pt")

    real, epochs = trainer.train_one_epoch, []

    def signalled(model, loader, *args, **kw):
        epochs.append(1)

        class Interrupting:          # sends SIGINT before the second batch of the chosen epoch
            def __len__(self):
                return len(loader)

            def __iter__(self):
                for i, batch in enumerate(loader):
                    if len(epochs) == stop_in_epoch and i == 1:
                        os.kill(os.getpid(), signal.SIGINT)
                    yield batch

        return real(model, Interrupting(), *args, **kw)

    monkeypatch.setattr(trainer, "train_one_epoch", signalled)
    run = tmp_path / "cut"
    with pytest.raises(TrainingInterrupted):
        fit(resolve_config(out=str(run), **base))
    assert load_checkpoint(run / "last.pt")["epoch"] == stop_in_epoch - 1
    monkeypatch.setattr(trainer, "train_one_epoch", real)
    fit(resolve_config(out=str(run), resume=str(run), **base))
    assert [r["epoch"] for r in metric_rows(run)] == ["1", "2"]
    return whole, load_checkpoint(run / "last.pt")


def assert_same_weights(whole, resumed):
    assert resumed["epoch"] == whole["epoch"] == 2
    for key, value in whole["model"].items():
        assert torch.allclose(resumed["model"][key].float(), value.float(), atol=1e-6), key


@pytest.mark.slow
@pytest.mark.parametrize("stop_in_epoch, ema", [(1, False), (2, False), (2, True)])
def test_sigint_mid_epoch_then_resume_equals_an_uninterrupted_run(tiny_data, tmp_path,
                                                                  monkeypatch, stop_in_epoch, ema):
    whole, resumed = interrupt_then_resume(tiny_data, tmp_path, monkeypatch, stop_in_epoch,
                                           model_ema=ema)
    assert_same_weights(whole, resumed)
    if ema:      # the average goes on from where it was, and both are scored as before
        for key, value in whole["ema_model"].items():
            assert torch.allclose(resumed["ema_model"][key].float(), value.float(), atol=1e-6)
        again = metric_rows(tmp_path / "cut")[-1]
        for key in ("raw_acc", "ema_acc", "ema"):
            assert again[key] == metric_rows(tmp_path / "whole")[-1][key], key


@pytest.mark.slow
def test_f8_resume_is_exact_with_the_workers_loader(tiny_data, tmp_path, monkeypatch):
    # worker processes draw the augmentations: a resumed run's fresh workers must draw
    # epoch 2's views, not epoch 1's again
    assert_same_weights(*interrupt_then_resume(tiny_data, tmp_path, monkeypatch, 2,
                                               loader="workers", workers=2, amp=False))


@pytest.mark.parametrize("pipeline", ["albumentations", "torchvision"])
def test_f8_worker_views_of_an_epoch_do_not_depend_on_the_epochs_before(tiny_data, pipeline):
    from fastleaf.loaders.workers_backend import WorkerLoader

    table = load_table(str(tiny_data), val_fraction=0.25, seed=0)
    rows = table.train.subset(np.arange(12))
    spec = AugmentSpec.train_preset(64)
    options = LoaderOptions(batch_size=3, workers=2, seed=1)

    def views(loader, epoch):
        loader.set_epoch(epoch)
        return torch.cat([images for images, _ in loader])

    continued = WorkerLoader(rows, spec, options, pipeline=pipeline)
    views(continued, 1)
    second = views(continued, 2)
    resumed = WorkerLoader(rows, spec, options, pipeline=pipeline)   # fresh workers
    assert torch.equal(views(resumed, 2), second)
    assert not torch.equal(views(resumed, 3), second)


def children(pid):
    """Worker processes torchrun started (``fastleaf`` in their command line)."""
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        pids = [int(p) for p in f.read().split()]
    return [p for p in pids if b"fastleaf" in open(f"/proc/{p}/cmdline", "rb").read()]


@pytest.mark.slow
def test_elastic_restart_resumes_on_its_own(tiny_data, tmp_path):
    run = tmp_path / "elastic"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    launcher = subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         "--max-restarts", "1", "-m", "fastleaf", "train", "--data", str(tiny_data),
         "--epochs", "3", "--out", str(run), *COMMON], env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wait_for_rows(launcher, run, 1)
    workers = children(launcher.pid)
    assert len(workers) == 2
    os.kill(workers[-1], signal.SIGKILL)          # one of the two workers dies
    output, _ = launcher.communicate(timeout=600)
    assert launcher.returncode == 0, output
    assert "resumed at epoch" in flat(output)
    assert [int(r["epoch"]) for r in metric_rows(run)] == [1, 2, 3]
    assert load_checkpoint(run / "last.pt")["epoch"] == 3


@pytest.mark.slow
def test_two_nodes_on_one_machine_write_one_run(tiny_data, tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    run = tmp_path / "multi"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    nodes = [subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "1",
         "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", "leaves",
         "-m", "fastleaf", "train", "--data", str(tiny_data), "--epochs", "1", "--out", str(run),
         *COMMON], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(2)]
    outputs = [node.communicate(timeout=600)[0] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], outputs
    assert sum("x2 processes" in flat(out) for out in outputs) == 1     # one rank 0 reports
    assert [r["epoch"] for r in metric_rows(run)] == ["1"]
    assert load_checkpoint(run / "best.pt")["epoch"] == 1
