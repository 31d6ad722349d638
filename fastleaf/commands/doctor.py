"""``fastleaf doctor``: versions, devices, CPU capability and the defaults fastleaf picks here."""
from __future__ import annotations

import argparse

NAME = "doctor"
HELP = "print versions, CUDA devices, CPU capability and the defaults chosen here (for bug reports)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    from ..doctor import collect, render

    # plain print: the report is meant to be pasted, so no colour codes and no re-wrapping
    print(render(collect()))
    return 0
