import re
import subprocess
import sys

import pytest

from fastleaf.cli import build_parser, main
from fastleaf.commands import COMMANDS


def test_building_the_parser_imports_no_heavy_library():
    # every subcommand's flags are declared without importing torch, DALI or matplotlib, so
    # `fastleaf --help` and argument errors answer at once
    code = ("import sys, fastleaf.cli; fastleaf.cli.build_parser(); "
            "print(sorted(m for m in ('torch', 'nvidia.dali', 'matplotlib', 'timm') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("module_name", COMMANDS)
def test_every_listed_command_parses_help(module_name, capsys):
    import importlib

    name = importlib.import_module(f"fastleaf.commands.{module_name}").NAME
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([name, "--help"])
    assert exit_info.value.code == 0
    assert f"usage: fastleaf {name}" in capsys.readouterr().out


def test_the_top_level_help_lists_every_command(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    out = capsys.readouterr().out
    for name in ("train", "tta-predict", "evaluate", "check-data", "bench", "report", "viz",
                 "synth", "demo", "data-summary", "configs", "doctor"):
        assert re.search(rf"^ +{name}\b", out, re.M), name


def test_a_user_error_is_one_line_and_exit_2(tmp_path, capsys):
    code = main(["train", "--config", str(tmp_path / "nope.yaml"), "--print-config"])
    assert code == 2
    err = capsys.readouterr().out.strip()
    assert err.startswith("error:") and "nope.yaml" in err and "\n" not in err


def test_an_internal_bug_keeps_its_traceback(monkeypatch):
    # a ValueError that is not a FastleafError is a bug: it must propagate, not become one line
    from fastleaf.commands import configs

    def broken(args):
        raise ValueError("internal bug")

    monkeypatch.setattr(configs, "run", broken)
    with pytest.raises(ValueError, match="internal bug"):
        main(["configs"])


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has CUDA")
def test_device_cuda_without_cuda_is_a_user_error(capsys):
    from fastleaf.utils.device import resolve_device

    from fastleaf.errors import FastleafError

    with pytest.raises(FastleafError, match="--device cpu"):
        resolve_device("cuda")


def test_prediction_flags_default_to_the_prediction_settings():
    from dataclasses import replace

    from fastleaf.commands.tta_predict import settings_from_args
    from fastleaf.predict.settings import PredictSettings

    args = build_parser().parse_args(["tta-predict", "--checkpoint", "run"])
    assert settings_from_args(args) == PredictSettings()      # every default is the settings'
    for command in ("evaluate", "predict", "pseudo-label", "tta-predict"):
        parser = build_parser()
        sub = next(a for a in parser._subparsers._group_actions[0].choices.items()
                   if a[0] == command)[1]
        assert sub.get_default("tta") == PredictSettings.tta, command
    # evaluate inherits the run's own batch size, precision and layout
    args = build_parser().parse_args(["evaluate", "--checkpoint", "run", "--tta", "none"])
    assert settings_from_args(args) == replace(PredictSettings(), tta="none", batch_size=None,
                                               amp=None, amp_dtype=None, channels_last=None)
