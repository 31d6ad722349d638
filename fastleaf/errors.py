"""Errors that are the user's input, not a bug: the CLI prints them in one line, exit code 2.

``FastleafError`` is the one base class; this module imports nothing else from the package at
import time, so every module can raise it without an import cycle.  Anything else that reaches
the CLI is a bug and keeps its traceback.  :func:`refusal_reason` words PyTorch's refusal to
load a file for such a message (checkpoints and weight files alike).
"""
from __future__ import annotations


class FastleafError(Exception):
    """Bad input (a file, a flag, a row): the message names it and says what to do."""


class UsageError(FastleafError, ValueError):
    """A flag or option value that cannot work (named in the message)."""


class MissingFileError(FastleafError, FileNotFoundError):
    """A file or folder the user named does not exist."""


class OutputExistsError(FastleafError, FileExistsError):
    """An output path is taken by something that must not be overwritten."""


class BackendFailed(FastleafError, RuntimeError):
    """A data loader backend cannot run on this machine (its library, driver or device): the
    message says which and names the loader to use instead.  ``--loader auto`` moves on to its
    next choice; a backend the user asked for by name ends the run in one line."""


class MissingExtra(FastleafError, ImportError):
    """An optional extra the command needs is not installed: the message names the pip line."""

    def __init__(self, extra: str, module: str):
        super().__init__(f"{module} is not installed: pip install 'fastleaf[{extra}]'")
        self.extra, self.module = extra, module


def refusal_reason(err: Exception) -> str:
    """The reason in PyTorch's refusal, without its advice to load with ``weights_only=False``
    (which would run whatever code the file carries)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    reasons = [line for line in lines if "weights_only" not in line.lower()
               and not line.startswith(("Weights only load failed", "Check the documentation"))]
    return reasons[0][:300] if reasons else type(err).__name__

