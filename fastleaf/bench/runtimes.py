"""Inference runtimes side by side: PyTorch eager vs ONNX Runtime, same model, same process.

    fastleaf bench --runtime torch,onnx --modes infer --models resnet18,tf_efficientnet_lite0

Each model is built once (random weights: speed does not depend on them), exported to a
temporary ONNX file with a dynamic batch, and both runtimes are fed the same input array at
each batch size, compute only (no decoding: the synthetic loader's view), with the same
number of CPU threads.  PyTorch runs with the bench's speed flags (on a bf16 CPU autocast and
channels_last by default; ``--no-amp`` for fp32); ONNX Runtime runs the fp32 graph.
"""
from __future__ import annotations

import itertools
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..errors import UsageError
from ..train.precision import create_precision
from ..utils.console import console
from ..utils.device import configure_device, resolve_device, seed_everything
from .measure import BenchResult, BenchSettings, Flags, loader_split
from .runner import build_case_model
from .report import device_name
from .timing import time_repeats

RUNTIMES = ("torch", "onnx")
NUM_CLASSES = 176            # the Classify Leaves head


def check_runtimes(runtimes, modes, device: torch.device) -> None:
    unknown = [r for r in runtimes if r not in RUNTIMES]
    if unknown:
        raise UsageError(f"--runtime {','.join(unknown)}: choose from {', '.join(RUNTIMES)}")
    if tuple(modes) != ("infer",):
        raise UsageError("--runtime compares inference only: add --modes infer")
    if device.type != "cpu":
        raise UsageError("ONNX Runtime is timed on the CPU here: add --device cpu")


def torch_runner(model: torch.nn.Module, flags: Flags, device: torch.device) -> Callable:
    precision = create_precision(flags.amp, device)

    def run(steps) -> None:
        with torch.no_grad():
            for images, _ in steps:
                with precision.autocast():
                    model(images)
    return run


def onnx_runner(path: Path, threads: int) -> Callable:
    from ..export.onnx_runtime import OnnxModel

    model = OnnxModel(path, threads=threads)

    def run(steps) -> None:
        for images, _ in steps:
            model.logits(images)
    return run


def export_for_bench(model: torch.nn.Module, name: str, size: int, folder: Path) -> Path:
    """``model`` (fp32, NCHW) as a dynamic-batch ONNX file."""
    from ..export.exporter import write_onnx
    from ..export.model_info import ExportSettings, ModelInfo

    path = folder / f"{name}.onnx"
    info = ModelInfo(name, [str(i) for i in range(NUM_CLASSES)], size, (0.5,) * 3, (0.5,) * 3)
    write_onnx(model, torch.zeros(1, 3, size, size), path, info, ExportSettings().opset)
    return path


def runtime_row(name: str, runtime: str, flags: Flags, batch: int, settings: BenchSettings,
                timing, device: torch.device) -> dict:
    label = flags.label() if runtime == "torch" else "fp32"
    return {"model": name, "mode": "infer", "loader": "synthetic", "runtime": runtime,
            "amp": flags.amp and runtime == "torch",
            "channels_last": flags.channels_last and runtime == "torch", "compile": False,
            "flags": label, "batch_size": batch, "img_size": settings.img_size,
            "img_per_s": round(timing.img_per_s, 2),
            "img_per_s_min": round(timing.img_per_s_min, 2),
            "img_per_s_max": round(timing.img_per_s_max, 2), "compile_s": 0.0,
            "warmup_s": round(timing.warmup_s, 2), "setup_s": 0.0,
            "device": device_name(device), "efficiency": None,
            "threads": torch.get_num_threads()}


def time_model(name: str, flags: Flags, settings: BenchSettings, runtimes, batches,
               folder: Path, device: torch.device, add: Callable[[dict], None]) -> None:
    """Every runtime x batch size of one model."""
    model = build_case_model(name, flags, NUM_CLASSES, settings.img_size, device).eval()
    runners = {"torch": torch_runner(model, flags, device)}
    if "onnx" in runtimes:
        plain = build_case_model(name, Flags(), NUM_CLASSES, settings.img_size, device)
        path = export_for_bench(plain, name, settings.img_size, folder)
        runners["onnx"] = onnx_runner(path, torch.get_num_threads())
    rng = np.random.default_rng(settings.seed)
    for batch in batches:
        array = rng.standard_normal((batch, 3, settings.img_size, settings.img_size),
                                    dtype=np.float32)
        tensor = torch.from_numpy(array)
        if flags.channels_last:
            tensor = tensor.contiguous(memory_format=torch.channels_last)
        labels = np.zeros(batch, np.int64)
        feeds = {"torch": (tensor, labels), "onnx": (array, labels)}
        for runtime in runtimes:
            timing = time_repeats(runners[runtime], itertools.repeat(feeds[runtime]), device,
                                  warmup=settings.warmup, steps=settings.steps,
                                  repeats=settings.repeats, max_seconds=settings.max_seconds)
            add(runtime_row(name, runtime, flags, batch, settings, timing, device))
            console.print(f"  {name:<22} batch {batch:<4} {runtime:<6} "
                          f"{timing.img_per_s:9.1f} img/s")


def run_runtime_bench(settings: BenchSettings, runtimes, batches,
                      on_row: Callable[[list[dict], dict], None] | None = None) -> BenchResult:
    """Inference images/sec per model x batch size x runtime (see the module docstring)."""
    device = resolve_device(settings.device)
    check_runtimes(runtimes, settings.modes, device)
    configure_device(device)
    loader_split(settings, "synthetic", device).apply()      # the threads training would use
    flags = (settings.flags or (Flags.defaults(device),))[0]
    rows: list[dict] = []

    def add(row: dict) -> None:
        rows.append(row)
        if on_row is not None:
            on_row(rows, {})

    console.print(f"runtimes {', '.join(runtimes)} on {device_name(device)}, "
                  f"{settings.img_size}px, batches {', '.join(map(str, batches))}, "
                  f"CPU capability {torch.backends.cpu.get_cpu_capability()}")
    with tempfile.TemporaryDirectory(prefix="fastleaf-runtimes-") as tmp:
        for name in settings.models:
            seed_everything(settings.seed)
            time_model(name, flags, settings, runtimes, batches, Path(tmp), device, add)
    return BenchResult(rows, {}, device_name(device))


def print_runtimes(rows: list[dict]) -> None:
    """One line per (model, batch): each runtime's img/s and ONNX Runtime's speed-up."""
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, title="inference images/sec: median of repeats")
    for column in ("model", "batch", "torch", "torch flags", "onnx", "onnx / torch"):
        table.add_column(column, justify="left" if column in ("model", "torch flags")
                         else "right", no_wrap=True)
    cases = dict.fromkeys((r["model"], r["batch_size"]) for r in rows)
    for model, batch in cases:
        mine = {r["runtime"]: r for r in rows
                if (r["model"], r["batch_size"]) == (model, batch)}
        t, o = mine.get("torch"), mine.get("onnx")
        ratio = f"{o['img_per_s'] / t['img_per_s']:.2f}x" if t and o else ""
        table.add_row(model, str(batch), f"{t['img_per_s']:.1f}" if t else "",
                      t["flags"] if t else "", f"{o['img_per_s']:.1f}" if o else "", ratio)
    console.print(table)
