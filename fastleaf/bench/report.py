"""Bench output: pipeline efficiency, the rich table, JSON/CSV rows (atomic) and machine facts."""
from __future__ import annotations

import json
import os
import platform
from datetime import datetime
from importlib import metadata

import torch
from rich import box
from rich.table import Table

from ..utils.atomic import write_text_atomic
from ..utils.console import console
from ..utils.csv_rows import write_rows

ROW_KEYS = ("model", "mode", "loader", "amp", "channels_last", "compile", "batch_size",
            "img_size", "img_per_s", "img_per_s_min", "img_per_s_max", "compile_s", "warmup_s",
            "setup_s", "device", "efficiency")
CASE_KEYS = ("model", "mode", "amp", "channels_last", "compile", "batch_size", "img_size",
             "device")


def add_efficiency(rows: list[dict]) -> list[dict]:
    """Set ``efficiency`` = img/s / the synthetic (compute-only) img/s of the same case.

    A case is (model, mode, flags, batch, size, device); without a synthetic row it stays None.
    """
    ceiling = {tuple(r[k] for k in CASE_KEYS): r["img_per_s"]
               for r in rows if r["loader"] == "synthetic"}
    for row in rows:
        top = ceiling.get(tuple(row[k] for k in CASE_KEYS))
        # loader-only rows have no compute ceiling to compare with
        row["efficiency"] = round(row["img_per_s"] / top, 3) if top and row["mode"] != "load" \
            else None
    return rows


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return f"cpu ({cpu_model()}, {torch.get_num_threads()} threads)"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def package_version(*names: str) -> str | None:
    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def machine_info() -> dict:
    """CPU, cores, GPU, library versions and the date: what a result file must record."""
    return {
        "date": datetime.now().isoformat(timespec="seconds"),
        "cpu": cpu_model(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),   # AVX2 / AVX512 ...
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "python": platform.python_version(), "torch": torch.__version__,
        "torchvision": package_version("torchvision"), "timm": package_version("timm"),
        "dali": package_version("nvidia-dali-cuda120", "nvidia-dali-cuda130",
                                "nvidia-dali-cuda110"),
    }


def rate(value: float) -> str:
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"


def print_rows(rows: list[dict], skipped: dict[str, str] | None = None) -> None:
    """The bench table: one line per case, efficiency against the synthetic loader."""
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 0),
                  title="images/sec: median of repeats (min-max)")
    for column in ("model", "mode", "loader", "flags"):
        table.add_column(column, no_wrap=True)
    for column in ("img/s", "min-max", "eff", "compile s"):
        table.add_column(column, justify="right", no_wrap=True)
    for r in rows:
        flags = "+".join(n for n, k in (("amp", "amp"), ("cl", "channels_last"),
                                        ("compile", "compile")) if r[k]) or "fp32"
        eff = "" if r["efficiency"] is None else f"{r['efficiency']:.0%}"
        table.add_row(r["model"], r["mode"], r["loader"], flags, f"{r['img_per_s']:.1f}",
                      f"{rate(r['img_per_s_min'])}-{rate(r['img_per_s_max'])}", eff,
                      f"{r['compile_s']:.1f}" if r["compile"] else "")
    console.print(table)
    setup = {}
    for r in rows:
        setup[r["loader"]] = max(setup.get(r["loader"], 0.0), r["setup_s"])
    console.print("loader setup (decode-once caches: the decode), longest: " +
                  ", ".join(f"{name} {sec:.1f} s" for name, sec in setup.items()))
    for name, why in (skipped or {}).items():
        console.print(f"[yellow]skipped loader {name}[/yellow]: {why}")


def best_per_model(rows: list[dict]) -> list[dict]:
    """Per model: the fastest real loader (not synthetic) of its training rows (inference when
    it has none), with its efficiency against compute-only."""
    best: dict[str, dict] = {}
    for row in rows:
        if row["loader"] == "synthetic" or row["mode"] == "load":
            continue
        current = best.get(row["model"])
        better_mode = current is not None and current["mode"] != "train" and row["mode"] == "train"
        if current is None or better_mode or (row["mode"] == current["mode"]
                                               and row["img_per_s"] > current["img_per_s"]):
            best[row["model"]] = row
    return list(best.values())


def print_summary(result) -> None:
    """The figures people compare, last: per model the best loader and its efficiency; the
    estimate against the time taken; how to run what the budget left out."""
    from ..utils.eta import duration
    from .plan import how_to_run_skipped

    for row in best_per_model(result.rows):
        eff = "" if row["efficiency"] is None else \
            f", {row['efficiency']:.0%} of compute-only ({row['mode']} on synthetic batches)"
        console.print(f"best for {row['model']}: {row['loader']} {row['img_per_s']:.1f} img/s "
                      f"({row['mode']}){eff}", soft_wrap=True, markup=False)
    plan = result.plan
    if plan is not None:
        console.print(f"took {duration(result.seconds)} (estimated {duration(plan.total)} for "
                      f"{len(plan.cases)} cases, plus the probe)", soft_wrap=True)
        advice = how_to_run_skipped(plan)
        if advice:
            console.print(f"[yellow]{advice}[/yellow]", soft_wrap=True)
    console.print("the plain PyTorch loop's ratio is measured by benchmarks/yardstick.py",
                  soft_wrap=True)


def write_json(path, rows: list[dict], skipped: dict | None = None,
               settings: dict | None = None) -> None:
    """``{"machine", "settings", "skipped", "rows"}``, written atomically."""
    doc = {"machine": machine_info(), "settings": settings or {}, "skipped": skipped or {},
           "rows": rows}
    write_text_atomic(path, json.dumps(doc, indent=1, default=str) + "\n")


def write_csv(path, rows: list[dict]) -> None:
    """One CSV line per row (columns ``ROW_KEYS`` first), written atomically."""
    keys = list(ROW_KEYS) + sorted({k for r in rows for k in r} - set(ROW_KEYS))
    write_rows(path, keys, rows)
