"""Errors that are the user's input, not a bug: the CLI prints them in one line, exit code 2."""
from __future__ import annotations

from .data.imageio import ImageDecodeError
from .data.table import DataError
from .train.checkpoint import CheckpointError

USER_ERRORS = (DataError, ImageDecodeError, CheckpointError, FileNotFoundError,
               FileExistsError, ValueError)
