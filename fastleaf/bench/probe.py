"""Probe each model, plan the bench within its budget, and show progress with an ETA.

    plan = make_plan(settings, device, loaders, flag_sets, num_classes, images)

The probe runs one warm-up and one timed step per (model, speed flags, mode) on a synthetic
batch, on the CPU with a small batch scaled up (a CPU step grows about linearly with the
batch; VGG16 trains 50 images in ~16 s there), on a GPU at the full batch.  Compilation is not
probed: a compiled case adds ``COMPILE_S``.
"""
from __future__ import annotations

import time
from dataclasses import replace

import torch

from ..utils.console import console
from ..utils.eta import duration
from .plan import (CPU_PROBE_BATCH, Case, Eta, Plan, case_seconds, describe,
                   fit_budget)
from .runner import build_case_model, mode_runner

# a loader-only step, which the model probe cannot see: measured on the 2-core CPU, cache-ram
# renders 1,425 img/s and the worker loader ~600 img/s (take the slower); a GPU loader far more
LOAD_IMG_PER_S = {"cpu": 600.0, "cuda": 5000.0}
# decode-once caches decode every image once before their first case (2-core CPU: ~2,000 img/s)
SETUP_IMG_PER_S = 2000.0
COMPILE_S = 30.0          # torch.compile of the paper CNN on the 2-core CPU: 28 s
CACHES = ("cache-ram", "cache-gpu")


def probe_steps(name: str, flags, modes, settings, device: torch.device,
                num_classes: int) -> dict[str, float]:
    """Seconds per step of each mode at the bench's batch size, for one model and flags."""
    from ..train.precision import create_precision

    batch = settings.batch_size if device.type == "cuda" \
        else min(settings.batch_size, CPU_PROBE_BATCH)
    model = build_case_model(name, replace(flags, compile=False), num_classes,
                             settings.img_size, device)
    precision = create_precision(flags.amp, device)
    size = settings.img_size
    x = torch.randn(batch, 3, size, size, device=device)
    if flags.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, num_classes, (batch,), device=device)
    steps = {}
    for mode in modes:
        if mode == "load":
            steps[mode] = settings.batch_size / LOAD_IMG_PER_S[device.type]
            continue
        run = mode_runner(model, mode, precision)
        run([(x, y)])                                       # warm-up: first-use costs
        start = time.perf_counter()
        run([(x, y)])
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        steps[mode] = (time.perf_counter() - start) * settings.batch_size / batch
    return steps


def estimate(case: Case, step_s: float, settings, images: int, first_use: bool) -> float:
    setup = images / SETUP_IMG_PER_S if first_use and case.loader in CACHES else 0.0
    compile_s = COMPILE_S if case.flags.compile else 0.0
    return compile_s + case_seconds(step_s, settings.warmup, settings.steps, settings.repeats,
                                    settings.max_seconds, setup)


def make_plan(settings, device: torch.device, loaders: list[str], flag_sets, num_classes: int,
              images: int) -> Plan:
    """Probe, estimate every case, keep what fits ``settings.budget``, print the plan."""
    start = time.perf_counter()
    cases, estimates, seen = [], [], set()
    for name in settings.models:
        for flags in flag_sets:
            try:
                steps = probe_steps(name, flags, settings.modes, settings, device, num_classes)
            except Exception as err:       # the case itself will report the failure in full
                console.print(f"[yellow]probe of {name} failed[/yellow]: {err}"[:300])
                steps = {mode: 0.0 for mode in settings.modes}
            for mode in settings.modes:
                for loader in loaders:
                    case = Case(name, flags, mode, loader)
                    key = (loader, mode, flags.channels_last, flags.amp)
                    cases.append(case)
                    estimates.append(estimate(case, steps[mode], settings, images,
                                              key not in seen))
                    seen.add(key)
    probe_s = time.perf_counter() - start
    plan = fit_budget(cases, estimates, settings.budget, spent=probe_s)
    for line in describe(plan, settings.budget, probe_s):
        console.print(line, soft_wrap=True, markup=False)
    return plan


class CaseProgress:
    """One plain line per finished case (for logs and pipes), or a bar with the ETA on a
    terminal; the ETA scales what is left by how the finished cases met their estimates."""

    def __init__(self, plan: Plan):
        self.plan, self.eta = plan, Eta(plan.estimates)
        self.start = time.perf_counter()
        self.bar = None
        if console.is_terminal and plan.cases:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self.bar = Progress(TextColumn("[bold]bench"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("{task.fields[status]}"), console=console,
                                transient=True)
            self.task = self.bar.add_task("bench", total=len(plan.cases), status="")
            self.bar.start()

    def finished(self, case: Case, row: dict | None, seconds: float) -> None:
        self.eta.finished(seconds)
        elapsed = time.perf_counter() - self.start
        result = f"{row['img_per_s']:.1f} img/s" if row else "not measured (see skipped)"
        status = f"elapsed {duration(elapsed)}, about {duration(self.eta.left)} left"
        line = (f"[{self.eta.done}/{len(self.plan.cases)}] {case.label()}: {result} "
                f"in {duration(seconds)}; {status}")
        if self.bar is not None:
            self.bar.console.print(line, soft_wrap=True, markup=False)
            self.bar.update(self.task, advance=1, status=status)
        else:
            console.print(line, soft_wrap=True, markup=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
