"""Progress bars: shown on a terminal for long loops, never in pipes or logs."""
from __future__ import annotations

import io

from rich.console import Console

from fastleaf.utils import console as console_module
from fastleaf.utils.console import tracked


def test_tracked_yields_every_item_and_draws_a_bar_on_a_terminal(monkeypatch):
    screen = io.StringIO()
    monkeypatch.setattr(console_module, "console",
                        Console(file=screen, force_terminal=True, width=100))
    assert list(tracked(iter(range(7)), "decoding 7 images", total=7)) == list(range(7))
    assert "decoding 7 images" in screen.getvalue()


def test_tracked_draws_nothing_into_a_pipe(monkeypatch):
    pipe = io.StringIO()
    monkeypatch.setattr(console_module, "console", Console(file=pipe, force_terminal=False))
    assert list(tracked([1, 2, 3], "checking images")) == [1, 2, 3]
    assert pipe.getvalue() == ""
