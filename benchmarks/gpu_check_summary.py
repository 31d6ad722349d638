"""Summarise a ``benchmarks/gpu_check.sh`` folder: summary.json and summary.md.

    python benchmarks/gpu_check_summary.py benchmarks/gpu-check-logs

summary.md is written to be copied to ``benchmarks/results/gpu-<card>.md``: card, driver and
library versions, each step's status and time, the training runs' img/s and accuracy, DALI's
presets, decoder rates and GPU-vs-CPU decode difference, the bench rows with their efficiency
against the synthetic loader, and the host-sync counts.
"""
from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import yaml


def read_json(path: Path):
    return json.loads(path.read_text()) if path.is_file() else None


def sync_words(val) -> str:
    """A loader's sync-probe entry: per batch, on the training thread, and where."""
    if not isinstance(val, dict):
        return str(val)
    where = "; ".join(f"{n}x `{site}`" for site, n in val.get("sites", {}).items())
    return (f"{val['per_batch']} per batch, {val['main_per_batch']} on the training thread"
            + (f" ({where})" if where else ""))


def steps(out: Path) -> list[dict]:
    path = out / "steps.tsv"
    if not path.is_file():
        return []
    keys = ("step", "status", "rc", "seconds", "budget_s")
    return [dict(zip(keys, line.split("\t"))) for line in path.read_text().splitlines() if line]


def runs(out: Path) -> list[dict]:
    rows = []
    for metrics in sorted((out / "runs").glob("*/metrics.csv")):
        config = yaml.safe_load((metrics.parent / "config.yaml").read_text()) or {}
        for r in csv.DictReader(open(metrics)):
            rows.append({"run": metrics.parent.name, "model": config.get("model"),
                         "amp": config.get("amp"), "amp_dtype": config.get("amp_dtype"),
                         "batch_size": config.get("batch_size"), "epoch": int(r["epoch"]),
                         "train_img_per_s": round(float(r["img_per_s"]), 1),
                         "val_img_per_s": round(float(r["val_img_per_s"]), 1),
                         "acc": round(float(r["acc"]), 4), "time_s": round(float(r["time_s"]), 1)})
    return rows


def bench(out: Path) -> tuple[list[dict], dict]:
    rows, skipped = [], {}
    for path in sorted(out.glob("bench-*.json")):
        doc = read_json(path)
        rows += doc["rows"]
        skipped.update({f"{path.stem}: {k}": v for k, v in doc["skipped"].items()})
    return rows, skipped


def dali_lines(dali: dict) -> list[str]:
    """The dali_check.py results: presets, decode-only rates, mixed-vs-CPU pixel difference."""
    lines = ["", "## DALI (benchmarks/dali_check.py)", ""]
    for name, val in ((dali.get("presets") or {}).get("presets") or {}).items():
        lines.append(f"- preset {name}: " + (val if isinstance(val, str) else
                     f"{val['batches']} batches, {val['img_per_s']} img/s, setup {val['setup_s']} s"))
    for row in (dali.get("decode") or {}).get("decode") or []:
        case = ", ".join(f"{k} {v}" for k, v in row.items() if k not in ("decoder", "img_per_s"))
        lines.append(f"- decode only, {row['decoder']}{' (' + case + ')' if case else ''}: "
                     f"{row['img_per_s']:.0f} img/s")
    for row in (dali.get("parity") or {}).get("parity") or []:
        lines.append(f"- mixed vs cpu decode, jpeg_fancy_upsampling={row['jpeg_fancy_upsampling']}: "
                     f"max |diff| {row['max_abs']}, mean {row['mean_abs']} ({row['images']} images)")
    return lines if len(lines) > 3 else []


def markdown(summary: dict) -> str:
    v = summary["versions"] or {}
    card = v.get("gpu") or "cpu (dry run)"
    lines = [f"# fastleaf device check: {card}", "",
             f"torch {v.get('torch')} (CUDA {v.get('cuda')}, cuDNN {v.get('cudnn')}), driver "
             f"{v.get('driver')}, torchvision {v.get('torchvision')}, timm {v.get('timm')}, "
             f"DALI {v.get('dali') or 'absent'} ({v.get('dali_path')}), {v.get('cores')} cores, "
             f"Python {v.get('python')}",
             "", "## Steps", "", "| step | status | s (budget) |", "|---|---|---|"]
    lines += [f"| {s['step']} | {s['status']} | {s['seconds']} ({s['budget_s']}) |"
              for s in summary["steps"]]
    lines += ["", "## Training runs (channels_last)", "",
              "| run | model | amp | batch | epoch | train img/s | val img/s | acc | s |",
              "|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['run']} | {r['model']} | {r['amp_dtype'] if r['amp'] else 'fp32'} | "
              f"{r['batch_size']} | {r['epoch']} | {r['train_img_per_s']} | "
              f"{r['val_img_per_s']} | {r['acc']} | {r['time_s']} |" for r in summary["runs"]]
    lines += dali_lines(summary["dali"])
    lines += ["", "## fastleaf bench (median img/s; eff = / synthetic)", "",
              "| model | mode | loader | batch | flags | img/s | eff |",
              "|---|---|---|---|---|---|---|"]
    for r in summary["bench"]:
        flags = "+".join(n for n, k in (("amp", "amp"), ("cl", "channels_last"),
                                        ("compile", "compile")) if r[k]) or "fp32"
        eff = "" if r["efficiency"] is None else f"{r['efficiency']:.2f}"
        lines.append(f"| {r['model']} | {r['mode']} | {r['loader']} | {r['batch_size']} | "
                     f"{flags} | {r['img_per_s']:.0f} | {eff} |")
    lines += [f"- skipped {k}: {why}" for k, why in summary["bench_skipped"].items()]
    syncs = summary["syncs"] or {}
    lines += ["", "## Host syncs (torch.cuda.set_sync_debug_mode)", ""]
    lines += [f"- loader {k}: {sync_words(val)}" for k, val in syncs.get("loaders", {}).items()]
    lines += [f"- train_one_epoch {k}: {val['syncs']} in {val['steps']} steps "
              f"(allowed {val['allowed']})" for k, val in syncs.get("loop", {}).items()]
    return "\n".join(lines) + "\n"


def main(out: str) -> int:
    out = Path(out)
    rows, skipped = bench(out)
    summary = {"versions": read_json(out / "versions.json"), "steps": steps(out),
               "runs": runs(out), "bench": rows, "bench_skipped": skipped,
               "syncs": read_json(out / "syncs.json"),
               "dali": {k: read_json(out / f"dali-{k}.json") for k in ("presets", "decode", "parity")}}
    # a step skipped with its reason (no DALI, no CUDA, out of time) is not a failure
    summary["failed"] = [s["step"] for s in summary["steps"]
                         if s["status"] != "pass" and not s["status"].startswith("skip")]
    # a bench case that broke counts as a failure; a loader absent here does not
    summary["failed"] += [k for k, why in skipped.items() if why.startswith("failed")]
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    (out / "summary.md").write_text(markdown(summary))
    print(f"wrote {out / 'summary.json'} and {out / 'summary.md'}")
    if summary["failed"]:
        print("failed: " + "; ".join(summary["failed"]))
    return 1 if summary["failed"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "benchmarks/gpu-check-logs"))
