"""benchmarks/gpu_check_summary.py: skipped steps are not failures; DALI's results are listed."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("gpu_check_summary",
                                              REPO / "benchmarks" / "gpu_check_summary.py")
summary_module = sys.modules[spec.name] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(summary_module)


def test_summary_counts_failures_not_skips_and_lists_dali(tmp_path):
    (tmp_path / "steps.tsv").write_text(
        "versions\tpass\t0\t5\t15\n"
        "dali-parity\tskip: needs CUDA: compares the mixed (nvJPEG) decode with the CPU one\t\t0\t30\n"
        "train-dali\tfail\t1\t9\t60\n")
    (tmp_path / "dali-presets.json").write_text(json.dumps({"device": "cuda:0", "presets": {
        "kaggle": "failed: ValueError: Named arguments must be on CPU",
        "eval": {"batches": 20, "img_per_s": 9000.0, "setup_s": 1.2}}}))
    (tmp_path / "dali-decode.json").write_text(json.dumps({"device": "cuda:0", "decode": [
        {"decoder": "mixed", "hw_decoder_load": 0.65, "img_per_s": 12345.6}]}))

    assert summary_module.main(str(tmp_path)) == 1
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["failed"] == ["train-dali"]
    text = (tmp_path / "summary.md").read_text()
    assert "| dali-parity | skip: needs CUDA" in text
    assert "- preset kaggle: failed: ValueError" in text
    assert "- preset eval: 20 batches, 9000.0 img/s" in text
    assert "- decode only, mixed (hw_decoder_load 0.65): 12346 img/s" in text
