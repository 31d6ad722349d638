"""``fastleaf bench --runtime torch,onnx``: PyTorch eager and ONNX Runtime side by side."""
from __future__ import annotations

import json

import pytest
import torch

from fastleaf.bench import BenchSettings, Flags
from fastleaf.bench.runtimes import check_runtimes, print_runtimes, run_runtime_bench
from fastleaf.cli import main
from fastleaf.errors import UsageError

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")


def tiny(**kw) -> BenchSettings:
    base = dict(models=("cnn",), modes=("infer",), flags=(Flags(amp=False),), img_size=112,
                steps=1, warmup=1, repeats=1, device="cpu")
    base.update(kw)
    return BenchSettings(**base)


def test_each_model_batch_and_runtime_gets_a_row():
    result = run_runtime_bench(tiny(), ("torch", "onnx"), (1, 3))
    cases = [(r["model"], r["batch_size"], r["runtime"]) for r in result.rows]
    assert cases == [("cnn", 1, "torch"), ("cnn", 1, "onnx"), ("cnn", 3, "torch"),
                     ("cnn", 3, "onnx")]
    for row in result.rows:
        assert row["img_per_s"] > 0 and row["mode"] == "infer" and row["img_size"] == 112
        assert row["device"].startswith("cpu") and row["threads"] == torch.get_num_threads()
    assert {r["flags"] for r in result.rows} == {"fp32"}


def test_what_the_comparison_cannot_do_is_one_line():
    cpu = torch.device("cpu")
    with pytest.raises(UsageError, match="choose from torch, onnx"):
        check_runtimes(("torch", "tensorrt"), ("infer",), cpu)
    with pytest.raises(UsageError, match="--modes infer"):
        check_runtimes(("torch", "onnx"), ("train", "infer"), cpu)
    with pytest.raises(UsageError, match="--device cpu"):
        check_runtimes(("onnx",), ("infer",), torch.device("cuda"))


def test_the_table_puts_the_runtimes_side_by_side(capsys):
    rows = [dict(model="resnet18", batch_size=1, runtime="torch", flags="amp+cl", img_per_s=40.0),
            dict(model="resnet18", batch_size=1, runtime="onnx", flags="fp32", img_per_s=70.0)]
    print_runtimes(rows)
    line = next(l for l in capsys.readouterr().out.splitlines() if "resnet18" in l)
    assert line.split() == ["resnet18", "1", "40.0", "amp+cl", "70.0", "1.75x"]


def test_the_cli_writes_the_rows(tmp_path):
    out = tmp_path / "runtimes.json"
    assert main(["bench", "--runtime", "torch,onnx", "--modes", "infer", "--models", "cnn",
                 "--img-size", "112", "--runtime-batches", "2", "--steps", "1", "--warmup", "0",
                 "--repeats", "1", "--device", "cpu", "--no-amp", "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert [r["runtime"] for r in doc["rows"]] == ["torch", "onnx"]
    assert doc["machine"]["cpu_capability"]
    assert main(["bench", "--runtime", "onnx", "--modes", "infer", "--runtime-batches", "0",
                 "--device", "cpu"]) == 2
