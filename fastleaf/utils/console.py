"""One rich console, the training progress bar (live img/s and loss) and ``tracked`` for every
other long loop (prediction, evaluation, the data check, the cache decode, the bench)."""
from __future__ import annotations

import re
from typing import Iterable, Iterator, TypeVar

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)

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
