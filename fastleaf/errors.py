"""Errors that are the user's input, not a bug: the CLI prints them in one line, exit code 2.

``FastleafError`` is the one base class; this module imports nothing else from the package at
import time, so every module can raise it without an import cycle.
"""
from __future__ import annotations


class FastleafError(Exception):
    """Bad input (a file, a flag, a row): the message names it and says what to do."""


def __getattr__(name: str):
    # USER_ERRORS names subclasses defined in modules that import this one: built on first use
    if name == "USER_ERRORS":
        from .data.imageio import ImageDecodeError
        from .data.table import DataError
        from .train.checkpoint import CheckpointError

        return (FastleafError, DataError, ImageDecodeError, CheckpointError, FileNotFoundError,
                FileExistsError, ValueError)
    raise AttributeError(name)
