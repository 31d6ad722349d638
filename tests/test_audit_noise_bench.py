"""benchmarks/audit_noise.py end to end at a tiny size: the figures it reports are consistent."""
import importlib.util
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("cleanlab")
pytestmark = pytest.mark.slow
SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "audit_noise.py"


def test_audit_noise_benchmark_tiny(tmp_path):
    spec = importlib.util.spec_from_file_location("audit_noise", SCRIPT)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    figures = bench.main(["--out", str(tmp_path), "--classes", "4", "--train-per-class", "8",
                          "--heldout-per-class", "2", "--img-size", "112", "--noise", "0.25",
                          "--epochs", "1", "--folds", "2", "--repeats", "2", "--device", "cpu", "--train-flags",
                          "-b", "16", "--workers", "0", "--no-amp", "--no-check-data"])
    flipped = set(pd.read_csv(tmp_path / "flipped.csv")["line"] - 2)
    assert len(flipped) == 8                      # 25 % of 32 rows, and the CSV differs there
    clean = pd.read_csv(tmp_path / "synth" / "train.csv")
    noisy = pd.read_csv(tmp_path / "noisy" / "train.csv")
    merged = noisy.merge(clean, on="image", suffixes=("", "_true"))
    assert set(merged.index[merged["label"] != merged["label_true"]]) == flipped
    for name, s in figures["detection"].items():
        if "f1" in s:
            assert s["flipped"] == 8 and 0 <= s["precision"] <= 1 and 0 <= s["recall"] <= 1
    assert set(figures["heldout_acc"]) == {"plain", "--exclude", "--relabel"}
    assert all(0 <= a <= 1 for a in figures["heldout_acc"].values())
    assert len(pd.read_csv(tmp_path / "heldout.csv")) == 8
    assert (tmp_path / "kfold1" / "oof.csv").is_file()      # the second seed's folds
