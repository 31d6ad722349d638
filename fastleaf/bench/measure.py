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

from ..data.augment import AugmentSpec
from ..data.table import Samples, load_table
from ..loaders import LoaderOptions, create_loader, resolve_backend
from ..utils.console import console
from ..train.precision import Precision, create_precision, default_speed_flags, loader_dtype
from ..utils.device import configure_device, resolve_device, seed_everything
from ..vocab import BACKENDS
from .plan import Case, Plan
from .probe import CaseProgress, make_plan
from .runner import build_case_model, mode_runner
from .report import add_efficiency, device_name
from .timing import batch_stream, time_repeats

DEFAULT_MODELS = ("cnn", "vgg16", "resnet18", "deit_tiny")
DEFAULT_LOADERS = BACKENDS     # every backend, the synthetic batches (the ceiling) included
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
    budget: float | None = None            # seconds for the whole bench; None: no limit


@dataclass
class BenchResult:
    rows: list[dict]
    skipped: dict[str, str] = field(default_factory=dict)   # loader -> why it was not run
    device: str = ""
    plan: Plan | None = None               # what was planned, estimated and left out
    seconds: float = 0.0                   # wall time of the whole bench


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


def run_case(case: Case, model: nn.Module, precision: Precision, pool: LoaderPool,
             on_row: Callable[[dict], None]) -> dict | None:
    """Time one (model, flags, mode, loader) case; its row, or None when it could not run."""
    s, device, flags = pool.settings, pool.device, case.flags
    built = pool.get(case.loader, case.mode, flags.channels_last, loader_dtype(precision, device))
    if built is None:
        return None
    loader, setup_s = built
    loader_split(s, case.loader, device).apply()     # every case runs as training would
    seed_everything(s.seed)
    try:
        timing = time_repeats(mode_runner(model, case.mode, precision), batch_stream(loader),
                              device, warmup=s.warmup, steps=s.steps, repeats=s.repeats,
                              max_seconds=s.max_seconds)
    except Exception as err:
        pool.discard(case.loader, case.mode, flags.channels_last, loader_dtype(precision, device))
        record_failure(pool, f"{case.loader} ({case.model} {case.mode} {flags.label()})", err)
        return None
    row = case_row(case.model, case.mode, case.loader, flags, s, timing, setup_s, device)
    # what fed the model: worker pipeline, loader workers and torch threads
    row.update(pipeline=getattr(loader, "pipeline", case.loader),
               workers=getattr(getattr(loader, "options", None), "workers", None),
               torch_threads=torch.get_num_threads())
    on_row(row)
    return row


def run_plan(plan: Plan, pool: LoaderPool, num_classes: int,
             on_row: Callable[[dict], None]) -> None:
    """Every planned case in order, one model built per (model, flags), with progress."""
    progress = CaseProgress(plan)
    current, model, precision = None, None, None
    for case in plan.cases:
        start = time.perf_counter()
        if current != (case.model, case.flags):
            current, model = (case.model, case.flags), None
            try:
                model = build_case_model(case.model, case.flags, num_classes,
                                         pool.settings.img_size, pool.device)
            except Exception as err:
                record_failure(pool, f"{case.model} ({case.flags.label()})", err)
            precision = create_precision(case.flags.amp, pool.device)
        row = run_case(case, model, precision, pool, on_row) if model is not None else None
        progress.finished(case, row, time.perf_counter() - start)
    progress.close()


def record_failure(pool: LoaderPool, case: str, err: Exception) -> None:
    """Note a failed case under ``skipped`` and free what it left on the GPU."""
    message = " ".join(f"{type(err).__name__}: {err}".split())
    pool.skipped[case] = f"failed: {message[:500]}"
    console.print(f"[red]  {case} failed[/red]: {message[:200]}")
    if pool.device.type == "cuda":
        torch.cuda.empty_cache()


def usable_loaders(settings: BenchSettings, device: torch.device) -> tuple[list[str], dict]:
    loaders, skipped = [], {}
    for name in settings.loaders:
        why = check_loader(name, device)
        if why is None:
            loaders.append(name)
        else:
            skipped[name] = why
    return loaders, skipped


def run_bench(settings: BenchSettings,
              on_row: Callable[[list[dict], dict], None] | None = None) -> BenchResult:
    """Probe, plan and measure every case of ``settings`` that fits its budget; returns rows
    (with efficiency), skipped loaders and cases, and the plan.

    ``on_row(rows, skipped)`` is called after every measured case with everything so far.
    """
    began = time.perf_counter()
    device = resolve_device(settings.device)
    configure_device(device)
    loaders, skipped = usable_loaders(settings, device)
    flag_sets = settings.flags or (Flags.defaults(device),)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="fastleaf-bench-") as tmp:
        samples, num_classes = bench_samples(settings, Path(tmp))
        console.print(f"bench on {device_name(device)}: {len(samples)} images, batch "
                      f"{settings.batch_size}, {settings.img_size}px, loaders {', '.join(loaders)}")
        for name in loaders:
            console.print(f"  {name}: {loader_split(settings, name, device).describe()}")
        plan = make_plan(settings, device, loaders, flag_sets, num_classes, len(samples))
        pool = LoaderPool(samples, settings, device)
        pool.skipped.update(skipped)

        def add(row: dict) -> None:
            rows.append(row)
            if on_row is not None:
                on_row(add_efficiency(rows), dict(pool.skipped))

        run_plan(plan, pool, num_classes, add)
        skipped = pool.skipped
        pool.built.clear()
    return BenchResult(add_efficiency(rows), skipped, device_name(device), plan,
                       time.perf_counter() - began)
