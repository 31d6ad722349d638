"""Deprecation notes: an old flag or config key still works for one release and says so once;
one that no longer does anything is still accepted and says that once."""
from __future__ import annotations

import sys

_said: set[str] = set()


def deprecation_note(old: str, new: str) -> None:
    """Tell once per process that ``old`` is deprecated in favour of ``new`` (on stderr, so a
    command's output stays clean)."""
    if old in _said:
        return
    _said.add(old)
    print(f"note: {old} is deprecated and goes away in the next release; use {new}",
          file=sys.stderr)


def removal_note(old: str, why: str) -> None:
    """Tell once per process that ``old`` does nothing any more, and why (on stderr)."""
    if old in _said:
        return
    _said.add(old)
    print(f"note: {old} has no effect and goes away in the next release: {why}",
          file=sys.stderr)


def current_name(name, renamed: dict, what: str):
    """``name``, or the name that replaced it in ``renamed`` (saying so once); ``what`` says
    where it was given (``--loader``, ``config.yaml: loader``)."""
    if name not in renamed:
        return name
    deprecation_note(f"{what} {name}", f"{what} {renamed[name]}")
    return renamed[name]
