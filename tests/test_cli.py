import subprocess
import sys

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


def test_every_listed_command_parses_help():
    parser = build_parser()
    names = set(parser._subparsers._group_actions[0].choices)
    assert len(names) == len(COMMANDS)
    assert {"train", "tta-predict", "evaluate", "check-data", "bench", "report", "viz", "synth",
            "demo", "data-summary", "configs", "doctor"} <= names
