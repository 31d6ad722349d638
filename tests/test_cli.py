import re
import subprocess
import sys

import pytest

from fastleaf.cli import build_parser
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
