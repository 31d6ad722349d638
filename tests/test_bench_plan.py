"""``fastleaf bench`` respects the user's time: plan and estimate first, a budget, an ETA, and
output that is never hard-wrapped in a pipe."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from fastleaf.bench import BenchSettings, Flags, run_bench
from fastleaf.bench import probe
from fastleaf.bench.plan import (Case, Eta, case_seconds, duration, fit_budget,
                                 how_to_run_skipped, repeat_seconds)
from fastleaf.cli import main

FLAGS = Flags()


def test_a_repeat_stops_after_the_step_that_passes_max_seconds():
    assert repeat_seconds(0.5, steps=8, max_seconds=5.0) == 4.0          # all 8 steps fit
    assert repeat_seconds(2.0, steps=8, max_seconds=5.0) == 6.0          # 3rd step ends past 5 s
    assert repeat_seconds(16.0, steps=8, max_seconds=5.0) == 16.0        # at least one step
    # setup + warm-up + repeats: VGG16 on a 2-core CPU (16 s a step) costs 80 s per case
    assert case_seconds(16.0, warmup=2, steps=8, repeats=3, max_seconds=5.0) == 80.0
    assert case_seconds(0.1, warmup=2, steps=8, repeats=3, max_seconds=5.0, setup_s=3) \
        == pytest.approx(5.6)


def test_the_budget_keeps_cases_in_order_and_names_the_rest():
    cases = [Case(m, FLAGS, "train", "cache-ram") for m in ("cnn", "vgg16", "resnet18")]
    plan = fit_budget(cases, [30.0, 400.0, 60.0], budget=120.0, spent=10.0)
    assert [c.model for c in plan.cases] == ["cnn", "resnet18"]      # a cheaper later one runs
    assert [(c.model, s) for c, s in plan.skipped] == [("vgg16", 400.0)]
    assert plan.total == 90.0
    advice = how_to_run_skipped(plan)
    assert "--budget inf" in advice and "--models vgg16" in advice and "6 min 40 s" in advice
    assert fit_budget(cases, [30.0, 400.0, 60.0], budget=None).skipped == []


def test_the_eta_scales_what_is_left_by_how_finished_cases_met_their_estimates():
    eta = Eta([10.0, 10.0, 20.0, 20.0])
    assert eta.left == 60.0
    eta.finished(20.0)
    eta.finished(20.0)                       # twice as slow as estimated so far
    assert eta.ratio == 2.0 and eta.left == 80.0
    eta.finished(10.0)
    assert eta.ratio == pytest.approx(50 / 40) and eta.left == pytest.approx(25.0)
    assert duration(42) == "42 s" and duration(185) == "3 min 5 s" and duration(3720) == "1 h 2 min"


def test_bench_skips_what_would_not_fit_with_a_fake_probe(tiny_data, monkeypatch, capsys):
    # the probe says resnet18 takes 100 s a step: its cases cannot fit a 60 s budget
    fake = {"cnn": 0.01, "resnet18": 100.0}
    monkeypatch.setattr(probe, "probe_steps", lambda name, flags, modes, *a: {
        mode: fake[name] for mode in modes})
    settings = BenchSettings(models=("cnn", "resnet18"), modes=("infer",),
                             loaders=("synthetic",), flags=(FLAGS,), data=str(tiny_data),
                             img_size=112, batch_size=4, steps=1, warmup=1, repeats=1,
                             workers=0, device="cpu", budget=60.0)
    result = run_bench(settings)
    assert [(r["model"], r["loader"]) for r in result.rows] == [("cnn", "synthetic")]
    assert [c.model for c, _ in result.plan.skipped] == ["resnet18"]
    out = capsys.readouterr().out
    assert out.index("plan: 1 cases") < out.index("[1/1] cnn infer synthetic fp32")
    assert "over the budget, skipped: 1 cases" in out and "resnet18 infer synthetic" in out


def test_the_probe_times_a_real_step_of_each_mode(tiny_data):
    settings = BenchSettings(img_size=112, batch_size=8)
    steps = probe.probe_steps("cnn", Flags(), ("train", "infer", "load"), settings,
                              __import__("torch").device("cpu"), 3)
    assert steps["train"] > 0 and steps["infer"] > 0
    assert steps["load"] == pytest.approx(8 / probe.LOAD_IMG_PER_S["cpu"])


def test_a_bare_bench_on_a_cpu_gets_a_budget_and_models_lift_it(monkeypatch):
    from fastleaf.bench.plan import CPU_BUDGET_S
    from fastleaf.cli import build_parser
    from fastleaf.commands.bench import settings_from_args

    def settings(*argv):
        return settings_from_args(build_parser().parse_args(["bench", "--device", "cpu", *argv]))

    assert settings().budget == CPU_BUDGET_S and settings().models == (
        "cnn", "vgg16", "resnet18", "deit_tiny")
    assert settings("--models", "cnn").budget is None
    assert settings("--budget", "inf").budget is None and settings("--budget", "90").budget == 90
    assert main(["bench", "--budget", "-3", "--device", "cpu"]) == 2


def long_folder(tmp_path):
    # a folder name longer than a terminal line: any hard wrap breaks it
    return tmp_path / ("leaves-" + "x" * 110)


def piped(*args):
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    done = subprocess.run([sys.executable, "-m", "fastleaf", *args], capture_output=True,
                          text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.mark.slow
def test_piped_output_is_never_hard_wrapped(tmp_path):
    data = long_folder(tmp_path)
    outputs = [
        piped("synth", "--out", str(data), "--classes", "3", "--train-per-class", "4",
              "--test-per-class", "1", "--img-size", "64"),
        piped("check-data", "--data", str(data), "--img-size", "64"),
        piped("data-summary", "--data", str(data)),
        piped("bench", "--data", str(data), "--models", "cnn", "--modes", "infer", "--loaders",
              "synthetic,cache-ram", "--workers", "0", "--img-size", "112", "--batch-size", "2", "--steps", "1",
              "--warmup", "1", "--repeats", "1", "--device", "cpu"),
    ]
    for out in outputs:
        lines = out.splitlines()
        assert any(len(line) > 100 for line in lines), out       # long lines were printed ...
        for line in lines:
            if data.name[:20] in line:
                assert data.name in line, out                    # ... and none was broken
    bench = outputs[-1]
    lines = bench.splitlines()
    assert any(line.startswith("plan: 2 cases, about") for line in lines)
    assert any(line.startswith("best for cnn: cache-ram") and "of compute-only" in line
               for line in lines)
    assert any(line.startswith("took ") and "estimated" in line for line in lines)
