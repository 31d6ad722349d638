"""``run_bench``: time every (model, speed flags, mode, loader) case on one data set.

The training loop (``train_one_epoch``) and prediction (``predict_logits``) are the ones
``fastleaf train`` uses, fed a bounded number of batches, so a figure here is what training
does.  Loaders are built once per (loader, mode, layout) and shared by every model, so the
decode cost of a cache is paid once (reported as ``setup_s``).

One case that fails (a loader that breaks while iterating, a model out of memory) is recorded
under ``skipped`` with its error and the bench goes on; ``on_row`` sees each row as it is
measured, so the command writes its files as the rows come in.
"""
from __future__ import annotations

import itertools
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn

from ..config import TrainConfig
from ..data.augment import AugmentSpec
from ..data.table import Samples, load_table
from ..errors import UsageError
from ..loaders import BACKENDS, LoaderOptions, create_loader, resolve_backend
from ..utils.console import console, tracked
from ..train.precision import Precision, create_precision, default_speed_flags, loader_dtype
from ..utils.device import configure_device, resolve_device, seed_everything
from .report import add_efficiency, device_name
from .timing import Steps, batch_stream, time_repeats

DEFAULT_MODELS = ("cnn", "vgg16", "resnet18", "deit_tiny")
DEFAULT_LOADERS = ("dali", "torchvision", "cache-ram", "cache-gpu", "synthetic")
# the set repeated to at least this many batches: DALI's reader then does not restart an
# epoch (and reshuffle) every few timed steps
MIN_BATCHES = 20


@dataclass(frozen=True)
class Flags:
    amp: bool = False
    channels_last: bool = False
    compile: bool = False

    @classmethod
    def matrix(cls) -> list["Flags"]:
        """All 8 combinations, plain first."""
        return [cls(*combo) for combo in itertools.product((False, True), repeat=3)]

    @classmethod
    def defaults(cls, device: torch.device) -> "Flags":
        """The measured fastest eager setting, as ``fastleaf train`` picks it (no compile)."""
        amp, channels_last = default_speed_flags(device)
        return cls(amp=amp, channels_last=channels_last, compile=False)

    def label(self) -> str:
        parts = [n for n, on in (("amp", self.amp), ("cl", self.channels_last),
                                 ("compile", self.compile)) if on]
        return "+".join(parts) or "fp32"


@dataclass
class BenchSettings:
    models: tuple[str, ...] = DEFAULT_MODELS
    modes: tuple[str, ...] = ("train", "infer")
    loaders: tuple[str, ...] = DEFAULT_LOADERS
    flags: tuple[Flags, ...] = ()          # empty: Flags.defaults(device)
    data: str | None = None                # None: a small synthetic set in a temp folder
    min_images: int | None = None          # None: MIN_BATCHES x batch_size
    img_size: int = 224
    batch_size: int = 50
    steps: int = 8
    warmup: int = 2
    repeats: int = 3
    max_seconds: float = 5.0               # per timed repeat; slow models stop early
    augment: str = "kaggle"
    workers: int | None = None             # None: plan_split's choice for each loader
    threads: int | None = None             # torch threads on the CPU; None: plan_split's
    device: str = "auto"
    seed: int = 0


@dataclass
class BenchResult:
    rows: list[dict]
    skipped: dict[str, str] = field(default_factory=dict)   # loader -> why it was not run
    device: str = ""


def check_loader(name: str, device: torch.device) -> str | None:
    """None when loader ``name`` can run on ``device``, else why not."""
    if name not in BACKENDS:
        return f"not a loader of this build ({', '.join(BACKENDS)})"
    if name == "cache-gpu" and device.type != "cuda":
        return "needs a CUDA device (cache-ram is its CPU counterpart)"
    try:
        resolve_backend(name, device)
    except ValueError as err:
        return str(err)
    return None


class LoaderPool:
    """Loaders built on first use and kept for every later case that wants the same one."""

    def __init__(self, samples: Samples, settings: BenchSettings, device: torch.device):
        self.samples, self.settings, self.device = samples, settings, device
        self.built: dict[tuple, tuple] = {}
        self.skipped: dict[str, str] = {}

    def get(self, name: str, mode: str, channels_last: bool, dtype: torch.dtype):
        """(loader, setup seconds), or None when it cannot be built (reason in ``skipped``)."""
        key = (name, mode, channels_last, dtype)
        if key not in self.built and name not in self.skipped:
            self.built[key] = self.build(name, mode, channels_last, dtype)
        return self.built.get(key) if name not in self.skipped else None

    def discard(self, name: str, mode: str, channels_last: bool, dtype: torch.dtype) -> None:
        """Forget a loader after a failed case: a later case starts from a fresh one."""
        self.built.pop((name, mode, channels_last, dtype), None)

    def build(self, name: str, mode: str, channels_last: bool, dtype: torch.dtype):
        s = self.settings
        training = mode in ("train", "load")
        spec = AugmentSpec.train_preset(s.img_size, s.augment) if training \
            else AugmentSpec.eval_preset(s.img_size)
        # as in training: the ragged last batch is dropped, images arrive in the autocast dtype
        options = LoaderOptions(batch_size=s.batch_size, device=self.device,
                                channels_last=channels_last,
                                workers=loader_split(s, name, self.device).workers,
                                seed=s.seed, drop_last=training, dtype=dtype)
        start = time.perf_counter()
        try:
            loader = create_loader(self.samples, spec, options, name)
        except Exception as err:   # a backend that cannot start here is reported, not fatal
            self.skipped[name] = f"could not start: {type(err).__name__}: {err}"
            return None
        if loader.fallback or loader.backend != name:
            self.skipped[name] = f"fell back to {loader.backend}: {loader.fallback or ''}"
            return None
        return loader, time.perf_counter() - start


def loader_split(settings: BenchSettings, loader: str, device: torch.device):
    """Loader workers and torch threads as ``fastleaf train`` would pick them for ``loader``."""
    from ..loaders.cpu_split import plan_split

    return plan_split(device, loader, settings.workers, settings.threads)


def bench_samples(settings: BenchSettings, tmp: Path) -> tuple[Samples, int]:
    """(training rows, repeated to ``min_images``; number of classes)."""
    data = settings.data
    if data is None:
        from ..data.synth import make_synthetic

        console.print("no --data: drawing a small synthetic set (10 classes x 20 images)")
        data = make_synthetic(tmp / "data", num_classes=10, train_per_class=20,
                              test_per_class=1, size=settings.img_size, seed=settings.seed)
    table = load_table(data, val_fraction=0.0, seed=settings.seed)
    return table.all_train.repeat(min_images(settings)), table.num_classes


def min_images(settings: BenchSettings) -> int:
    if settings.min_images is None:
        return MIN_BATCHES * settings.batch_size
    return settings.min_images


def build_case_model(name: str, flags: Flags, num_classes: int, settings: BenchSettings,
                     device: torch.device) -> nn.Module:
    """The model as ``fastleaf train`` wraps it: device -> channels_last -> compile."""
    from ..train.trainer import build_model

    cfg = TrainConfig(model=name, channels_last=flags.channels_last, compile=flags.compile,
                      img_size=settings.img_size)
    return build_model(cfg, num_classes, device)[1]


def mode_runner(model: nn.Module, mode: str, precision: Precision):
    """A function that runs one bounded pass: training steps or prediction batches."""
    from ..train.loop import predict_logits, train_one_epoch
    from ..train.optim import create_optimizer

    if mode == "load":
        # the loader alone (training views, batches on the device); the model is not run
        return lambda steps: sum(1 for _ in steps)
    if mode == "infer":
        return lambda steps: predict_logits(model, steps, precision)
    if mode != "train":
        raise UsageError(f"unknown bench mode {mode!r}: train, infer or load")
    # forward + backward + optimizer step, exactly the training loop's step
    optimizer = create_optimizer(model, "adam", 3e-4)
    loss_fn = nn.CrossEntropyLoss()
    return lambda steps: train_one_epoch(model, steps, optimizer, precision, loss_fn)


def case_row(model_name: str, mode: str, loader_name: str, flags: Flags, settings: BenchSettings,
             timing, setup_s: float, device: torch.device) -> dict:
    return {"model": model_name, "mode": mode, "loader": loader_name, "amp": flags.amp,
            "channels_last": flags.channels_last, "compile": flags.compile,
            "batch_size": settings.batch_size, "img_size": settings.img_size,
            "img_per_s": round(timing.img_per_s, 2),
            "img_per_s_min": round(timing.img_per_s_min, 2),
            "img_per_s_max": round(timing.img_per_s_max, 2),
            "compile_s": round(timing.warmup_s, 2) if flags.compile else 0.0,
            "warmup_s": round(timing.warmup_s, 2), "setup_s": round(setup_s, 2),
            "device": device_name(device), "efficiency": None}


def run_model(model_name: str, flags: Flags, pool: LoaderPool, loaders: list[str],
              num_classes: int, on_row: Callable[[dict], None]) -> None:
    """Every mode x loader case of one model with one set of speed flags."""
    s, device = pool.settings, pool.device
    try:
        model = build_case_model(model_name, flags, num_classes, s, device)
    except Exception as err:
        record_failure(pool, f"{model_name} ({flags.label()})", err)
        return
    precision = create_precision(flags.amp, device)
    dtype = loader_dtype(precision, device)
    for mode in s.modes:
        run = mode_runner(model, mode, precision)
        for loader_name in loaders:
            built = pool.get(loader_name, mode, flags.channels_last, dtype)
            if built is None:
                continue
            loader, setup_s = built
            loader_split(s, loader_name, device).apply()     # every case runs as training would
            seed_everything(s.seed)
            try:
                timing = time_repeats(run, batch_stream(loader), device, warmup=s.warmup,
                                      steps=s.steps, repeats=s.repeats,
                                      max_seconds=s.max_seconds)
            except Exception as err:
                pool.discard(loader_name, mode, flags.channels_last, dtype)
                record_failure(pool, f"{loader_name} ({model_name} {mode} {flags.label()})", err)
                continue
            row = case_row(model_name, mode, loader_name, flags, s, timing, setup_s, device)
            # what fed the model: worker pipeline, loader workers and torch threads
            row.update(pipeline=getattr(loader, "pipeline", loader_name),
                       workers=getattr(getattr(loader, "options", None), "workers", None),
                       torch_threads=torch.get_num_threads())
            on_row(row)
            console.print(f"  {model_name:<10} {mode:<5} {loader_name:<11} {flags.label():<15} "
                          f"{timing.img_per_s:9.1f} img/s")


def record_failure(pool: LoaderPool, case: str, err: Exception) -> None:
    """Note a failed case under ``skipped`` and free what it left on the GPU."""
    message = " ".join(f"{type(err).__name__}: {err}".split())
    pool.skipped[case] = f"failed: {message[:500]}"
    console.print(f"[red]  {case} failed[/red]: {message[:200]}")
    if pool.device.type == "cuda":
        torch.cuda.empty_cache()


def run_bench(settings: BenchSettings,
              on_row: Callable[[list[dict], dict], None] | None = None) -> BenchResult:
    """Measure every case of ``settings``; returns rows (with efficiency) and skipped loaders.

    ``on_row(rows, skipped)`` is called after every measured case with everything so far.
    """
    device = resolve_device(settings.device)
    configure_device(device)
    skipped = {}
    loaders = []
    for name in settings.loaders:
        why = check_loader(name, device)
        if why is None:
            loaders.append(name)
        else:
            skipped[name] = why
    flag_sets = settings.flags or (Flags.defaults(device),)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="fastleaf-bench-") as tmp:
        samples, num_classes = bench_samples(settings, Path(tmp))
        console.print(f"bench on {device_name(device)}: {len(samples)} images, batch "
                      f"{settings.batch_size}, {settings.img_size}px, loaders {', '.join(loaders)}")
        for name in loaders:
            console.print(f"  {name}: {loader_split(settings, name, device).describe()}")
        pool = LoaderPool(samples, settings, device)
        pool.skipped.update(skipped)

        def add(row: dict) -> None:
            rows.append(row)
            if on_row is not None:
                on_row(add_efficiency(rows), dict(pool.skipped))

        cases = list(itertools.product(settings.models, flag_sets))
        for model_name, flags in tracked(cases, "bench cases"):
            run_model(model_name, flags, pool, loaders, num_classes, add)
        skipped = pool.skipped
        pool.built.clear()
    return BenchResult(add_efficiency(rows), skipped, device_name(device))
