"""Throughput measurement: images/sec per model, mode, loader and speed flags.

    from fastleaf.bench import BenchSettings, run_bench
    result = run_bench(BenchSettings(models=("cnn",), loaders=("cache-ram", "synthetic")))
    result.rows      # dicts: model, mode, loader, amp, channels_last, compile, img_per_s, ...
"""
from .measure import BenchResult, BenchSettings, Flags, run_bench
from .report import (ROW_KEYS, add_efficiency, machine_info, print_rows, print_summary, write_csv,
                     write_json)

__all__ = ["BenchResult", "BenchSettings", "Flags", "ROW_KEYS", "add_efficiency", "machine_info",
           "print_rows", "print_summary", "run_bench", "write_csv", "write_json"]
