"""benchmarks/audit_noise.py end to end at a small size: a model trained on an easy noisy set
finds the flipped labels, and the figures the benchmark reports are consistent."""
import importlib.util
from pathlib import Path

import pandas as pd
import pytest

from fastleaf.audit import DEFAULT_METHOD

pytest.importorskip("cleanlab")
pytestmark = pytest.mark.slow
SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "audit_noise.py"
# an easy set: 4 classes x 20 training images, 8 labels flipped, a CNN good enough that the
# flips stand out
SMALL = ["--classes", "4", "--train-per-class", "20", "--heldout-per-class", "2",
         "--img-size", "112", "--noise", "0.1", "--epochs", "10", "--folds", "2",
         "--repeats", "2"]
FLIPS = 8
RECALL_FLOOR, PRECISION_FLOOR = 0.75, 0.5      # measured: recall 1.0, precision 0.73


def test_audit_noise_benchmark_small(tmp_path):
    spec = importlib.util.spec_from_file_location("audit_noise", SCRIPT)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    figures = bench.main(["--out", str(tmp_path), *SMALL, "--device", "cpu", "--train-flags",
                          "-b", "16", "--workers", "0", "--no-amp", "--no-check-data"])
    flipped = pd.read_csv(tmp_path / "flipped.csv")
    assert len(flipped) == FLIPS
    clean = pd.read_csv(tmp_path / "synth" / "train.csv")
    noisy = pd.read_csv(tmp_path / "noisy" / "train.csv")
    merged = noisy.merge(clean, on="image", suffixes=("", "_true"))
    assert set(merged.index[merged["label"] != merged["label_true"]]) == \
        set(flipped["line"] - 2)
    assert (flipped["suggested_label"] == merged["label_true"][flipped["line"] - 2].values).all()
    detection = figures["detection"]
    for name, s in detection.items():
        if "f1" in s:
            assert s["flipped"] == FLIPS and 0 <= s["precision"] <= 1 and 0 <= s["recall"] <= 1
    audit = detection[bench.finder(DEFAULT_METHOD)]
    assert audit["recall"] >= RECALL_FLOOR and audit["precision"] >= PRECISION_FLOOR, audit
    assert set(figures["heldout_acc"]) == {"plain", "--exclude", "--relabel",
                                           "--exclude flipped.csv", "--relabel flipped.csv"}
    assert all(0 <= a <= 1 for a in figures["heldout_acc"].values())
    assert len(figures["detection_per_seed"]) == 2
    assert (tmp_path / "kfold1" / "oof.csv").is_file()      # the second seed's folds
