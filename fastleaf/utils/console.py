"""One rich console, the training progress bar (live img/s and loss) and ``tracked`` for every
other long loop (prediction, evaluation, the data check, the cache decode, the bench)."""
from __future__ import annotations

import os
import re
from typing import Iterable, Iterator, TypeVar

from rich.console import Console as RichConsole, ConsoleDimensions
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)

# the width a pipe, a log file or CI gets when COLUMNS is unset: wide enough for every table
PIPE_WIDTH = 200


class Console(RichConsole):
    """rich's console, except that output to anything but a terminal is never hard-wrapped.

    rich wraps at 80 columns when stdout is not a terminal, which breaks ``grep`` and CI logs
    mid-sentence.  Off a terminal, text lines stay whole (soft wrap) and tables get
    ``PIPE_WIDTH`` columns unless COLUMNS says otherwise.
    """

    @property
    def soft_wrap(self) -> bool:
        return self._soft_wrap or not self.is_terminal

    @soft_wrap.setter
    def soft_wrap(self, value: bool) -> None:
        self._soft_wrap = value

    @property
    def size(self) -> ConsoleDimensions:
        size = super().size
        if self.is_terminal or "COLUMNS" in os.environ or self._width is not None:
            return size
        return ConsoleDimensions(max(size.width, PIPE_WIDTH), size.height)

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        RichConsole.size.fset(self, new_size)


console = Console(highlight=False)
T = TypeVar("T")
# control characters but tab and newline: escape sequences that clear, move or retitle a terminal
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def shown(value) -> str:
    """``value`` as text to print: rich markup in it escaped (a class name
    ``[link=file:///etc/passwd]`` stays text) and control characters written as ``\\x1b``
    instead of acting on the terminal.  Every user string (names, paths, labels, messages)
    goes through this before it is printed."""
    from rich.markup import escape

    return escape(CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(value)))


def make_progress(enabled: bool = True) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:>7.1f} img/s"), TextColumn("loss {task.fields[loss]:.4f}"),
        TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=True,
        disable=not enabled)


def tracked(items: Iterable[T], description: str, total: int | None = None,
            enabled: bool = True) -> Iterator[T]:
    """Yield ``items`` while a transient bar counts them (done / total, elapsed, remaining).

    Shown only on a terminal, so logs, pipes and tests get no bar lines; ``total`` defaults to
    ``len(items)``.
    """
    progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), TimeRemainingColumn(), console=console,
                        transient=True, disable=not (enabled and console.is_terminal))
    with progress:
        task = progress.add_task(description, total=len(items) if total is None else total)
        for item in items:
            yield item
            progress.advance(task)
