"""``fastleaf bench`` functions and CLI; the speed flags on every built-in model."""
from __future__ import annotations

import csv
import json

import pytest
import torch
import torch.nn as nn

from fastleaf.bench import ROW_KEYS, BenchSettings, Flags, add_efficiency, run_bench
from fastleaf.cli import main
from fastleaf.data.augment import AugmentSpec
from fastleaf.data.table import load_table
from fastleaf.loaders import LoaderOptions, create_loader
from fastleaf.models import create_model
from fastleaf.train.loop import predict_logits, train_one_epoch
from fastleaf.train.precision import create_precision

REQUIRED = ("model,mode,loader,amp,channels_last,compile,batch_size,img_per_s,img_per_s_min,"
            "img_per_s_max,compile_s,device,efficiency").split(",")


def tiny_settings(data, **kw) -> BenchSettings:
    base = dict(models=("cnn",), modes=("train", "infer"), loaders=("cache-ram", "synthetic"),
                flags=(Flags(amp=True, channels_last=True),), data=str(data), img_size=112,
                batch_size=4, steps=1, warmup=1, repeats=2, workers=0, device="cpu")
    base.update(kw)
    return BenchSettings(**base)


@pytest.mark.slow
def test_run_bench_rows_have_the_required_keys_and_efficiency(tiny_data):
    result = run_bench(tiny_settings(tiny_data, loaders=("cache-ram", "synthetic", "cache-gpu",
                                                          "nope")))
    assert {(r["mode"], r["loader"]) for r in result.rows} == {
        (m, l) for m in ("train", "infer") for l in ("cache-ram", "synthetic")}
    for row in result.rows:
        assert set(REQUIRED) <= set(row) and set(ROW_KEYS) <= set(row)
        assert 0 < row["img_per_s_min"] <= row["img_per_s"] <= row["img_per_s_max"]
        assert row["amp"] and row["channels_last"] and not row["compile"]
        assert row["compile_s"] == 0.0 and row["device"].startswith("cpu")
    synthetic = [r for r in result.rows if r["loader"] == "synthetic"]
    assert all(r["efficiency"] == 1.0 for r in synthetic)
    cached = [r for r in result.rows if r["loader"] == "cache-ram"]
    assert all(isinstance(r["efficiency"], float) and r["efficiency"] > 0 for r in cached)
    assert "CUDA" in result.skipped["cache-gpu"] and "nope" in result.skipped
    assert cached[0]["setup_s"] > 0                            # the decode, paid once


def test_add_efficiency_divides_by_the_matching_synthetic_row():
    case = dict(model="cnn", mode="train", amp=True, channels_last=True, compile=False,
                batch_size=50, img_size=224, device="cpu")
    rows = [dict(case, loader="synthetic", img_per_s=500.0),
            dict(case, loader="cache-ram", img_per_s=400.0),
            dict(case, loader="workers", img_per_s=100.0, amp=False)]   # no ceiling
    add_efficiency(rows)
    assert [r["efficiency"] for r in rows] == [1.0, 0.8, None]


def test_flag_matrix_has_eight_distinct_combinations():
    combos = Flags.matrix()
    assert len(set(combos)) == 8 and combos[0] == Flags()
    assert Flags(True, True, True).label() == "amp+cl+compile" and Flags().label() == "fp32"


def test_cli_writes_json_and_csv_rows(tiny_data, tmp_path):
    out_json, out_csv = tmp_path / "bench.json", tmp_path / "bench.csv"
    code = main(["bench", "--data", str(tiny_data), "--models", "cnn", "--modes", "infer",
                 "--loaders", "synthetic,workers", "--img-size", "112", "--batch-size", "4",
                 "--steps", "2", "--warmup", "1", "--repeats", "1", "--workers", "0",
                 "--no-amp", "--device", "cpu", "--json", str(out_json), "--csv", str(out_csv)])
    assert code == 0
    doc = json.loads(out_json.read_text())
    assert {r["loader"] for r in doc["rows"]} == {"synthetic", "workers"}
    assert all(set(REQUIRED) <= set(r) and r["amp"] is False for r in doc["rows"])
    assert doc["machine"]["torch"] == torch.__version__ and doc["machine"]["cores"] >= 1
    rows = list(csv.DictReader(open(out_csv)))
    assert len(rows) == 2 and list(rows[0])[:len(ROW_KEYS)] == list(ROW_KEYS)


# every built-in model, a training step and prediction, with bf16 autocast and channels_last
# (tiny inputs; vgg16 with a slim 256-wide pre-logits head instead of 4096, same features;
# torch.compile is covered by test_train's compile test)
MODELS = [("cnn", 112, {}), ("resnet18", 32, {}), ("vgg16", 32, {"mlp_ratio": 1 / 16}),
          ("deit_tiny", 32, {"img_size": 32})]


@pytest.mark.parametrize("name,size,kwargs", MODELS, ids=[m[0] for m in MODELS])
@pytest.mark.slow
def test_speed_flags_train_and_predict_every_builtin_model(tiny_data, name, size, kwargs):
    amp = channels_last = True
    device = torch.device("cpu")
    torch.manual_seed(0)
    model = create_model(name, 6, **kwargs)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)    # as build_model wraps it
    samples = load_table(tiny_data, val_fraction=0.0).all_train.subset(range(4))
    options = LoaderOptions(batch_size=2, channels_last=channels_last, workers=0)
    loader = create_loader(samples, AugmentSpec.train_preset(size, "none"), options, "synthetic")
    precision = create_precision(amp, device)
    trainable = [p for p in model.parameters() if p.requires_grad]
    before = [p.detach().clone() for p in trainable]
    optimizer = torch.optim.SGD(trainable, lr=0.1)
    stats = train_one_epoch(model, loader, optimizer, precision, nn.CrossEntropyLoss())
    assert stats.images == 4 and torch.isfinite(torch.tensor(stats.loss))
    assert any(not torch.equal(a, b) for a, b in zip(before, trainable))
    eval_loader = create_loader(samples, AugmentSpec.eval_preset(size), options, "synthetic")
    logits, labels, _ = predict_logits(model, eval_loader, precision)
    assert logits.shape == (4, 6) and logits.dtype == torch.float32
    assert torch.isfinite(logits).all() and labels.tolist() == samples.labels.tolist()


@pytest.mark.slow
def test_load_mode_times_the_loader_alone(tiny_data):
    result = run_bench(tiny_settings(tiny_data, modes=("load",),
                                     loaders=("workers", "cache-ram")))
    assert {(r["mode"], r["loader"]) for r in result.rows} == {
        ("load", "workers"), ("load", "cache-ram")}
    for row in result.rows:
        assert row["img_per_s"] > 0 and row["efficiency"] is None


def break_cache_iteration(monkeypatch, error):
    """cache-ram yields one batch, then fails as a broken loader would."""
    from fastleaf.loaders.cache_backend import CacheLoader

    original = CacheLoader.__iter__

    def broken(self):
        it = original(self)
        yield next(it)
        raise error

    monkeypatch.setattr(CacheLoader, "__iter__", broken)


@pytest.mark.slow
def test_a_loader_failing_mid_run_is_recorded_and_the_rest_measured(tiny_data, monkeypatch):
    break_cache_iteration(monkeypatch, RuntimeError("decoder fell over"))
    result = run_bench(tiny_settings(tiny_data, loaders=("cache-ram", "synthetic"), warmup=2))
    assert {(r["mode"], r["loader"]) for r in result.rows} == {
        ("train", "synthetic"), ("infer", "synthetic")}
    failed = {k: v for k, v in result.skipped.items() if k.startswith("cache-ram")}
    assert set(failed) == {"cache-ram (cnn train amp+cl)", "cache-ram (cnn infer amp+cl)"}
    assert all("RuntimeError: decoder fell over" in why for why in failed.values())


def test_cli_writes_rows_as_they_finish(tiny_data, tmp_path, monkeypatch):
    out_json, out_csv = tmp_path / "b.json", tmp_path / "b.csv"
    # the second loader of the first mode ends the whole run, as Ctrl-C would
    break_cache_iteration(monkeypatch, KeyboardInterrupt())
    code = main(["bench", "--data", str(tiny_data), "--models", "cnn", "--modes", "infer",
                 "--loaders", "synthetic,cache-ram", "--img-size", "112", "--batch-size", "4",
                 "--steps", "1", "--warmup", "2", "--repeats", "1", "--workers", "0",
                 "--device", "cpu", "--json", str(out_json), "--csv", str(out_csv)])
    assert code != 0
    doc = json.loads(out_json.read_text())
    assert [r["loader"] for r in doc["rows"]] == ["synthetic"]
    assert len(list(csv.DictReader(open(out_csv)))) == 1


def test_loaders_get_the_training_shape_and_enough_images(tiny_data):
    from fastleaf.bench.measure import LoaderPool, bench_samples, min_images

    settings = tiny_settings(tiny_data, batch_size=8)
    assert min_images(settings) == 160
    samples, _ = bench_samples(settings, None)
    assert len(samples) >= 160
    pool = LoaderPool(samples, settings, torch.device("cpu"))
    train, _ = pool.get("cache-ram", "train", True, torch.bfloat16)
    infer, _ = pool.get("cache-ram", "infer", True, torch.float32)
    assert train.options.drop_last and not infer.options.drop_last
    assert train.options.dtype == torch.bfloat16
    images, _ = next(iter(train))
    assert images.dtype == torch.bfloat16
