"""One vocabulary: timm's train.py spellings, every config field as a flag, old names deprecated,
and each name list of :mod:`fastleaf.vocab` tied to what the code builds for it."""
from __future__ import annotations

import argparse
import dataclasses

import numpy as np
import pytest
import torch
import yaml

from fastleaf.cli import build_parser, main
from fastleaf.commands.train import config_from_args
from fastleaf.config import TrainConfig, load_config_source, resolve_config
from fastleaf.train.ema import DECAY_RANGE
from fastleaf.vocab import (AMP_DTYPES, AUGMENTS, BACKENDS, INTERPOLATIONS, LOADERS, METRICS,
                            TTA_NAMES)


def train_config(*argv: str) -> TrainConfig:
    args = build_parser().parse_args(["train", *argv])
    return config_from_args(args)


def test_timm_spellings_set_the_same_options():
    cfg = train_config("-b", "32", "-j", "3", "--opt", "adamw", "--sched", "cosine",
                       "--smoothing", "0.1", "--clip-grad", "2.5", "--torchcompile",
                       "--mixup-prob", "0.4", "--warmup-epochs", "2", "--min-lr", "1e-5")
    assert (cfg.batch_size, cfg.workers, cfg.optimizer, cfg.scheduler) == (32, 3, "adamw", "cosine")
    assert (cfg.label_smoothing, cfg.grad_clip, cfg.compile) == (0.1, 2.5, True)
    assert (cfg.mix_prob, cfg.warmup_epochs, cfg.min_lr) == (0.4, 2, 1e-5)


def test_every_config_field_is_a_train_flag():
    parser = build_parser()
    train = next(a for a in parser._actions if a.dest == "command").choices["train"]
    dests = {a.dest for a in train._actions}
    missing = [f.name for f in dataclasses.fields(TrainConfig) if f.name not in dests]
    assert missing == []


def test_plateau_settings_reach_the_config():
    cfg = train_config("--plateau-factor", "0.25", "--plateau-patience", "2")
    assert (cfg.plateau_factor, cfg.plateau_patience) == (0.25, 2)


def test_print_config_prints_the_resolved_yaml_and_trains_nothing(tmp_path, capsys):
    out = tmp_path / "never"
    code = main(["train", "--config", "cnn", "-b", "32", "--opt", "adamw", "--out", str(out),
                 "--print-config"])
    assert code == 0 and not out.exists()
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed == {**TrainConfig(**load_config_source("cnn")).to_dict(), "batch_size": 32,
                       "optimizer": "adamw", "out": str(out)}


def test_loader_lists_its_choices_and_refuses_others(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "{" + ",".join(LOADERS) + "}" in text
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--loader", "ram"])


@pytest.mark.parametrize("old, loader", [("ram", "cache-ram"), ("gpu", "cache-gpu"),
                                         ("none", "auto")])
def test_cache_flag_still_works_and_says_what_replaces_it(old, loader, capsys, monkeypatch):
    from fastleaf.utils import deprecation

    monkeypatch.setattr(deprecation, "_said", set())     # the note is said once per process
    assert train_config("--cache", old).loader == loader
    if old != "none":
        assert "use --loader" in capsys.readouterr().err


def test_a_saved_config_with_the_old_cache_key_loads_as_the_loader(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({**TrainConfig().to_dict(), "loader": "auto",
                                    "cache": "ram"}).replace("loader: cache-ram\n", ""))
    assert resolve_config(path).loader == "cache-ram"
    assert TrainConfig.from_dict({"cache": "none"}).loader == "auto"
    with pytest.raises(ValueError, match="unknown option"):
        TrainConfig.from_dict({"batchsize": 3}, "x.yaml")


def test_auto_loader_on_a_cpu_caches_when_the_set_fits(monkeypatch):
    from fastleaf.loaders import cache_backend, resolve_backend

    cpu = torch.device("cpu")
    monkeypatch.setattr(cache_backend, "available_ram_bytes", lambda: 8 * 2**30)
    backend, why = resolve_backend("auto", cpu, images=18353, size=224)
    assert backend == "cache-ram" and "fit" in why and "2.57 GiB" in why
    monkeypatch.setattr(cache_backend, "available_ram_bytes", lambda: 2 * 2**30)
    backend, why = resolve_backend("auto", cpu, images=18353, size=224)
    assert backend == "workers" and "do not fit" in why
    # one pass over the images (prediction) gains nothing from a cache
    assert resolve_backend("auto", cpu)[0] == "workers"


def test_train_help_names_the_dataclass_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    defaults = TrainConfig()
    for said in (f"({defaults.plateau_factor})", f"({defaults.plateau_patience})",
                 f"({defaults.min_lr:g})", f"within {DECAY_RANGE}",
                 f"({defaults.val_fraction})"):
        assert said in text


# each option whose values are a vocabulary list, by its argparse destination
CHOSEN_FROM = {"eval_metric": METRICS, "metric": METRICS, "loader": LOADERS, "augment": AUGMENTS,
               "amp_dtype": AMP_DTYPES, "tta": TTA_NAMES, "interpolation": INTERPOLATIONS}


def test_every_command_offers_the_vocabulary_lists_as_they_are():
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    seen = {}
    for name, sub in commands.items():
        for action in sub._actions:
            hidden = action.help == argparse.SUPPRESS       # an old spelling (its own values)
            if action.dest in CHOSEN_FROM and action.choices is not None and not hidden:
                seen[(name, action.dest)] = tuple(action.choices)
    assert {key: CHOSEN_FROM[key[1]] for key in seen} == seen
    # the commands that must offer them do
    assert {("train", d) for d in ("eval_metric", "loader", "augment", "amp_dtype")} <= set(seen)
    assert {("tta-predict", "tta"), ("evaluate", "tta"), ("predict", "tta"),
            ("pseudo-label", "tta"), ("blend", "metric"), ("bench", "augment")} <= set(seen)


def test_the_help_texts_name_every_loader_and_view():
    from fastleaf.commands.flags import LOADER_HELP
    from fastleaf.commands.tta_predict import TTA_HELP

    assert [n for n in LOADERS if n not in LOADER_HELP] == []
    assert [n for n in TTA_NAMES if n not in TTA_HELP] == []


def test_every_metric_name_is_computed_and_nothing_else():
    from fastleaf.study.stats import batch_metrics
    from fastleaf.train.metrics import classification_metrics

    truth, said = np.array([0, 1, 1, 2]), np.array([0, 1, 0, 2])
    assert tuple(classification_metrics(truth, said)) == METRICS
    assert tuple(batch_metrics(truth, said, 3)) == METRICS


@pytest.mark.parametrize("name", BACKENDS)
def test_every_backend_name_builds_its_loader(name, tiny_data):
    from fastleaf.data.augment import AugmentSpec
    from fastleaf.data.table import load_table
    from fastleaf.errors import BackendFailed
    from fastleaf.loaders import LoaderOptions, create_loader

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    samples = load_table(tiny_data).val
    options = LoaderOptions(batch_size=4, device=device, workers=0)
    if name == "cache-gpu" and device.type != "cuda":
        with pytest.raises(ValueError, match="needs a CUDA device"):
            create_loader(samples, AugmentSpec.eval_preset(32), options, name)
        return
    try:
        loader = create_loader(samples, AugmentSpec.eval_preset(32), options, name)
    except BackendFailed as err:        # DALI absent or unable to start on this machine
        assert name == "dali" and "DALI" in str(err)
        return
    assert loader.backend == name
    images, labels = next(iter(loader))
    assert images.shape == (4, 3, 32, 32) and labels.shape == (4,)


def test_an_unknown_backend_name_is_refused_by_name(tiny_data):
    from fastleaf.data.augment import AugmentSpec
    from fastleaf.data.table import load_table
    from fastleaf.loaders import LoaderOptions, create_loader

    options = LoaderOptions(batch_size=4, device=torch.device("cpu"), workers=0)
    with pytest.raises(ValueError, match="unknown loader 'ram'"):
        create_loader(load_table(tiny_data).val, AugmentSpec.eval_preset(32), options, "ram")


def test_every_augment_strength_gives_its_own_training_views():
    from fastleaf.data.augment import AugmentSpec

    specs = [AugmentSpec.train_preset(64, strength) for strength in AUGMENTS]
    assert all(spec.train for spec in specs)
    assert len({spec.draws() for spec in specs}) == len(AUGMENTS)
    with pytest.raises(ValueError, match="kaggle, light, none"):
        AugmentSpec.train_preset(64, "heavy")


def test_every_view_name_gives_its_views_in_torch_and_in_the_exported_model():
    from fastleaf.export.model_info import tta_views
    from fastleaf.predict.tta import view_count, views

    for name in TTA_NAMES:
        assert len(views(name)(torch.zeros(1, 3, 8, 8))) == view_count(name)
        assert len(tta_views(np.zeros((1, 3, 8, 8), np.float32), name)) == view_count(name)


def test_every_amp_dtype_is_one_precision_can_run():
    from fastleaf.train.precision import create_precision

    cpu = torch.device("cpu")
    assert create_precision(True, cpu, "auto").dtype == torch.bfloat16
    assert create_precision(True, cpu, "bf16").dtype == torch.bfloat16
    # fp16 is known, only not on the CPU
    with pytest.raises(ValueError, match="fp16 autocast is for CUDA"):
        create_precision(True, cpu, "fp16")
    with pytest.raises(ValueError, match="amp dtype must be one of auto, bf16, fp16"):
        create_precision(True, cpu, "fp8")


def test_library_defaults_are_the_configs():
    import inspect

    from fastleaf.data.table import load_table
    from fastleaf.loaders import LoaderOptions
    from fastleaf.train.optim import Schedule, create_optimizer
    from fastleaf.utils.device import default_workers

    d = TrainConfig()

    def defaults(fn) -> dict:
        return {k: p.default for k, p in inspect.signature(fn).parameters.items()
                if p.default is not inspect.Parameter.empty}

    assert defaults(load_table)["group_near_duplicates"] == d.group_near_duplicates
    assert defaults(create_optimizer) == {"name": d.optimizer, "lr": d.lr,
                                          "weight_decay": d.weight_decay,
                                          "backbone_lr": d.backbone_lr,
                                          "layer_decay": d.layer_decay}
    assert defaults(Schedule) == {"name": d.scheduler, "epochs": d.epochs,
                                  "warmup_epochs": d.warmup_epochs, "factor": d.plateau_factor,
                                  "patience": d.plateau_patience, "min_lr": d.min_lr,
                                  "steps_per_epoch": 1}
    # the config leaves workers unset (None): chosen for the device, and so do the loaders
    assert d.workers is None and LoaderOptions().workers == default_workers("cpu")
    assert LoaderOptions(workers=0).workers == 0


def test_the_workers_loader_answers_to_its_old_name_with_a_note(tmp_path, capsys, monkeypatch):
    from fastleaf.loaders import resolve_backend
    from fastleaf.utils import deprecation

    monkeypatch.setattr(deprecation, "_said", set())     # the note is said once per process
    assert train_config("--loader", "torchvision").loader == "workers"
    assert "--loader torchvision is deprecated" in capsys.readouterr().err
    assert "torchvision" not in LOADERS                   # listed under its name only
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"loader": "torchvision"}))
    assert resolve_config(path).loader == "workers"
    assert "'loader: torchvision' is deprecated" in capsys.readouterr().err
    assert resolve_backend("torchvision", "cpu") == ("workers", "asked for")


def test_every_interpolation_resizes_an_exported_models_photos():
    import io

    from PIL import Image

    from fastleaf.export.model_info import _FILTERS, ModelInfo, load_photo

    assert tuple(_FILTERS) == INTERPOLATIONS
    buffer = io.BytesIO()
    pixels = np.random.default_rng(0).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(buffer, format="PNG")
    info = ModelInfo("cnn", ["a"], 16, (0.5,) * 3, (0.5,) * 3)
    views = [load_photo(buffer.getvalue(), "x.png", dataclasses.replace(info, interpolation=name))
             for name in INTERPOLATIONS]
    assert all(v.shape == (3, 16, 16) for v in views)
    assert all(not np.array_equal(a, b) for i, a in enumerate(views) for b in views[i + 1:])


def test_the_weights_eval_filter_and_crop_are_accepted_and_change_nothing(capsys, monkeypatch):
    from fastleaf.utils import deprecation

    monkeypatch.setattr(deprecation, "_said", set())
    assert train_config("--crop-pct", "0.9", "--interpolation", "bicubic") == train_config()
    err = capsys.readouterr().err
    assert "--crop-pct has no effect" in err and "--interpolation has no effect" in err
    with pytest.raises(SystemExit):         # the values are checked as they were
        build_parser().parse_args(["train", "--interpolation", "lanczos"])
    # a run saved with them (every pretrained run recorded the weights') loads without them
    saved = TrainConfig.from_dict({"model": "resnet18", "interpolation": "bicubic",
                                   "crop_pct": 0.875}, "best.pt")
    assert saved == TrainConfig(model="resnet18")
