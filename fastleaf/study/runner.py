"""``run_study``: measure, plan, print the budget, then train the paper's models one after
another into one study folder and write its report.

    from fastleaf.study.plan import StudyOptions
    from fastleaf.study.runner import run_study
    run_study(StudyOptions(data="data/classify-leaves", out="runs/paper", quick=True))

Every model is an ordinary ``fit`` into ``R/<model>``; an interrupted study is continued by
running it again (finished models are skipped, an interrupted one resumes from its last.pt).
"""
from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

from rich.table import Table as RichTable

from ..config import TrainConfig
from ..data.table import read_csv, resolve_layout
from ..errors import UsageError
from ..utils.console import console
from ..utils.eta import duration, time_left
from .budget import QUICK_EPOCHS, estimate, quick_plan, split_counts, work_for
from .plan import (MANIFEST, SUBSET, Plan, StudyOptions, check_options, check_same,
                   model_config, read_manifest, run_state, write_manifest, write_subset)


def train_run(cfg: TrainConfig):
    from ..train.trainer import fit

    return fit(cfg)


def run_study(options: StudyOptions, *, dry_run: bool = False, probe_steps: int = 3,
              train: Callable[[TrainConfig], object] = train_run) -> Path | None:
    """Run (or continue) the study; returns the report's HTML path (None for a dry run).

    ``train`` trains one config (``fit``; tests pass a wrapper that interrupts it).
    """
    check_options(options)
    out = Path(options.out)
    saved = read_manifest(out)
    if saved:
        check_same(saved["options"], options, out / MANIFEST)
    elif any((out / m).exists() for m in options.models):
        # never overwrite run folders that no study of this command made
        raise UsageError(f"{out} holds run folders but no {MANIFEST}: it is not a study "
                         f"folder; choose another --out")
    labels = read_csv(resolve_layout(options.data).train_csv, ("image", "label"))["label"]
    plan = Plan.from_dict(saved["plan"]) if saved else None
    states = {m: run_state(out / m, plan.epochs, out / "scores.csv") if plan else "new"
              for m in options.models}
    todo = [m for m in options.models if states[m] != "done"]
    start = time.perf_counter()
    timings = measure(options, todo, probe_steps)
    spent = time.perf_counter() - start
    console.print(f"measured {len(todo)} model(s) in {duration(spent)}")
    if plan is None:
        plan = choose_plan(options, timings, labels.tolist(), spent)
    seconds = remaining_seconds(options, plan, timings, labels.tolist(), states)
    for model, value in seconds.items():     # the first estimate stays, to compare with
        plan.estimate_s.setdefault(model, round(value, 1))
    print_plan(options, plan, states, seconds, timings)
    if dry_run:
        return None
    if not saved:
        write_manifest(out, options, plan)
    if plan.per_class and not (out / SUBSET / "train.csv").is_file():
        write_subset(options.data, out / SUBSET, plan.per_class, options.seed)
    train_models(options, plan, todo, states, seconds, train)
    from .report import write_study_report

    return write_study_report(out, options, plan)


def measure(options: StudyOptions, models: list[str], steps: int) -> dict:
    """A :class:`Timing` per model, on the study's data with each run's own config."""
    from .probe import probe_check, probe_model

    if not models:
        return {}
    check_s, images = probe_check(options.data)
    timings = {}
    for model in models:
        cfg = model_config(options, Plan(epochs=1, train_data=options.data), model)
        cfg = replace(cfg, progress=False, out=None)
        console.print(f"timing {model}: {steps} training steps and {steps} validation batches "
                      f"after a warm-up step")
        timings[model] = probe_model(cfg, steps=steps, check_s=check_s / images)
    return timings


def choose_plan(options: StudyOptions, timings: dict, labels: list[str],
                spent_s: float = 0.0) -> Plan:
    """The recipes' epochs on every image, or under --quick the plan that fits what the
    measurement (``spent_s``) left of the budget."""
    batch = batch_size(options)
    train_data = str(Path(options.data).resolve())
    if not options.quick:
        return Plan(epochs=options.epochs or recipe(options).epochs, train_data=train_data)
    left = options.budget_min * 60 - spent_s
    chosen = quick_plan(timings, labels, batch, TrainConfig.val_fraction, left, options.epochs)
    if not chosen.fits:
        console.print(f"[yellow]note: even {chosen.per_class} images per class and "
                      f"{chosen.epochs} epoch(s) are estimated at {duration(chosen.total_s)}, "
                      f"over the {duration(max(left, 0))} the {options.budget_min:g} min budget "
                      f"leaves after measuring[/yellow]")
    data = str((Path(options.out) / SUBSET).resolve()) if chosen.per_class else train_data
    return Plan(epochs=chosen.epochs, per_class=chosen.per_class, train_data=data)


def recipe(options: StudyOptions) -> TrainConfig:
    """The first model's recipe: the paper's four share epochs and batch size."""
    from ..config import resolve_config

    return resolve_config(options.models[0])


def batch_size(options: StudyOptions) -> int:
    return options.batch_size or recipe(options).batch_size


def remaining_seconds(options: StudyOptions, plan: Plan, timings: dict, labels: list[str],
                      states: dict) -> dict[str, float]:
    """Estimated seconds of each model still to train (its epochs not yet recorded)."""
    train, val = split_counts(labels, plan.per_class, TrainConfig.val_fraction)
    works = {}
    for model, timing in timings.items():
        done = done_epochs(Path(options.out) / model) if states[model] == "partial" else 0
        works[model] = work_for(train, val, batch_size(options), max(plan.epochs - done, 0))
    return estimate(timings, works)


def done_epochs(run_dir: Path) -> int:
    from ..utils.csv_rows import read_rows

    return len(read_rows(run_dir / "metrics.csv"))


def print_plan(options: StudyOptions, plan: Plan, states: dict, seconds: dict,
               timings: dict) -> None:
    subset = f"{plan.per_class} images per class" if plan.per_class else "every image"
    console.print(f"study {options.out}: {subset}, {plan.epochs} epoch(s) each", soft_wrap=True)
    table = RichTable()
    for column in ("model", "state", "s/train step", "s/eval batch", "estimate"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for model in options.models:
        t = timings.get(model)
        table.add_row(model, states[model], f"{t.train_step_s:.2f}" if t else "-",
                      f"{t.eval_batch_s:.2f}" if t else "-",
                      duration(seconds[model]) if model in seconds else "-")
    table.add_row("total", "", "", "", duration(sum(seconds.values())))
    console.print(table)
    if options.quick and plan.epochs < QUICK_EPOCHS:
        console.print(f"[yellow]note: {plan.epochs} epoch(s) to fit the budget[/yellow]")


def train_models(options: StudyOptions, plan: Plan, todo: list[str], states: dict,
                 seconds: dict, train: Callable) -> None:
    """Train each model in turn, the study's time left shown before each."""
    out = Path(options.out)
    estimates = [seconds[m] for m in todo]
    actuals: list[float] = []
    for i, model in enumerate(todo):
        console.rule(f"[{i + 1}/{len(todo)}] {model}: about {duration(estimates[i])}; "
                     f"study left about {duration(time_left(estimates, actuals))}")
        start = time.perf_counter()
        train(run_config(options, plan, model, states[model]))
        actuals.append(time.perf_counter() - start)
        plan.actual_s[model] = round(actuals[-1], 1)
        write_manifest(out, options, plan)
        console.print(f"{model} took {duration(actuals[-1])} (estimated "
                      f"{duration(estimates[i])})")
    if actuals:
        console.print(f"trained {len(actuals)} model(s) in {duration(sum(actuals))} (estimated "
                      f"{duration(sum(estimates))})")


def run_config(options: StudyOptions, plan: Plan, model: str, state: str) -> TrainConfig:
    """A new run, or the interrupted one continued exactly from its last.pt."""
    run_dir = Path(options.out) / model
    if state == "partial":
        from ..train.resume import resume_config

        return resume_config(run_dir, epochs=plan.epochs, device=options.device,
                             workers=options.workers, progress=options.progress)
    # a folder without last.pt is an attempt that stopped before its first checkpoint
    return replace(model_config(options, plan, model), overwrite=run_dir.exists())
