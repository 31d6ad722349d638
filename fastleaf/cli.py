"""``fastleaf`` command line: one thin front per subcommand.

Each module in ``fastleaf.commands`` has ``NAME``, ``HELP``, ``add_arguments(parser)`` and
``run(args) -> int``; the work itself lives in importable functions.
"""
from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys

from . import __version__
from .commands import COMMANDS
from .errors import FastleafError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fastleaf", description="Fast image-classification trainer for Classify Leaves.")
    parser.add_argument("--version", action="version", version=f"fastleaf {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in COMMANDS:
        module = importlib.import_module(f"fastleaf.commands.{module_name}")
        cmd = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.add_arguments(cmd)
        cmd.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args._argv = argv
    from .utils.console import console
    from .train.signals import TrainingInterrupted

    try:
        return int(args._run(args) or 0)
    except TrainingInterrupted as err:
        console.print(f"[yellow]{err}[/yellow]")
        return err.exit_code
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/yellow]")
        return 130
    except FastleafError as err:
        # only the user's input ends in one line; any other exception is a bug and keeps its
        # traceback (FASTLEAF_DEBUG=1 shows one for user errors too)
        return user_error(err)
    except OSError as err:
        if os.environ.get("FASTLEAF_DEBUG"):
            raise
        return user_error(machine_error(err))


def machine_error(err: OSError) -> FastleafError:
    """An OSError that is the user's path or the machine's disk, said in one line; any
    other is re-raised with its traceback."""
    from .utils.atomic import disk_error

    if err.errno == errno.ENAMETOOLONG:
        # a path the user typed (or a row named) that no file system can hold, wherever used
        return FastleafError(f"{shorten(err.filename)}: a name in this path is longer than "
                             f"the file system allows (255 bytes)")
    if err.errno in (errno.EACCES, errno.EPERM) and err.filename:   # a read or a write
        return FastleafError(f"{err.filename}: permission denied")
    said = disk_error(err, "a file")
    if said is None:
        raise err
    return said


def user_error(err: FastleafError) -> int:
    if os.environ.get("FASTLEAF_DEBUG"):
        raise err
    from .utils.console import console, shown

    # soft_wrap: the message stays whole for a pipe; shown: names in it are neither markup
    # nor terminal escape codes
    console.print(f"[bold red]error:[/bold red] {shown(err)}", soft_wrap=True)
    return 2


def shorten(path, keep: int = 40) -> str:
    """``path`` with each overlong name cut to its first ``keep`` characters."""
    parts = str(path).split(os.sep)
    return os.sep.join(p if len(p) <= keep else f"{p[:keep]}...({len(os.fsencode(p))} bytes)"
                       for p in parts)


if __name__ == "__main__":
    sys.exit(main())
