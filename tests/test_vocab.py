"""One vocabulary: timm's train.py spellings, every config field as a flag, old names deprecated."""
from __future__ import annotations

import dataclasses

import pytest
import torch
import yaml

from fastleaf.cli import build_parser, main
from fastleaf.commands.train import config_from_args
from fastleaf.config import LOADERS, TrainConfig, load_config_source, resolve_config
from fastleaf.train.ema import DECAY_RANGE


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
    assert backend == "torchvision" and "do not fit" in why
    # one pass over the images (prediction) gains nothing from a cache
    assert resolve_backend("auto", cpu)[0] == "torchvision"


def test_train_help_names_the_dataclass_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    defaults = TrainConfig()
    for said in (f"({defaults.plateau_factor})", f"({defaults.plateau_patience})",
                 f"({defaults.min_lr:g})", f"within {DECAY_RANGE}",
                 f"({defaults.val_fraction})"):
        assert said in text
