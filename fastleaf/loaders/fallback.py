"""``--loader auto`` never ends a run in a traceback: the next choice takes over.

``auto`` picks by measurement (``resolve_backend``), but a backend can still fail on a given
machine: a DALI build that does not match the driver, a GPU whose memory another process took,
a library that imports and then cannot start.  :class:`FallbackLoader` builds its first choice
when the first batch is asked for; if building it or reading that batch fails for any reason
but the data's own (a bad file fails on every backend and is reported as it is), one line names
the failure and the next choice takes over.  The training and validation loaders share one
:class:`Choices`, so a backend that failed once is not tried again for the other.

A backend the user named (``--loader dali``) is not wrapped: its failure ends the run in one
line (``BackendFailed``), exit 2.
"""
from __future__ import annotations

from ..errors import BackendFailed, FastleafError
from ..utils.console import console
from .base import Loader


class Choices:
    """The ordered backends ``auto`` may use; failed ones are dropped for every loader."""

    def __init__(self, names: list[str]):
        if not names:
            raise ValueError("auto needs at least one backend to choose from")
        self.names = list(names)
        self.failures: dict[str, str] = {}

    @property
    def current(self) -> str:
        return self.names[0]

    def failed(self, name: str, err: BaseException) -> None:
        """Drop ``name`` and say so in one line; re-raise ``err`` when nothing is left."""
        if name in self.names and len(self.names) > 1:
            self.names.remove(name)
        if name == self.names[0]:     # the last choice: nothing to fall back to
            raise err
        from rich.markup import escape

        reason = one_line(err)
        self.failures[name] = reason
        console.print(f"[yellow]loader {name} failed ({escape(reason)}); auto falls back to "
                      f"{self.current}[/yellow]", soft_wrap=True, highlight=False)


def one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def is_the_datas_fault(err: BaseException) -> bool:
    """A user error about the data (a bad file or row) fails on every backend: report it."""
    return isinstance(err, FastleafError) and not isinstance(err, BackendFailed)


class FallbackLoader(Loader):
    """The first of ``choices`` that builds and delivers its first batch (the loader contract's
    sizes are the base's, the same for every backend)."""

    def __init__(self, samples, spec, options, choices: Choices, create):
        super().__init__(samples, spec, options)
        self.choices, self.create = choices, create
        self.loader: Loader | None = None

    @property
    def backend(self) -> str:
        return self.loader.backend if self.loader is not None else self.choices.current

    @property
    def fallback(self) -> str | None:
        if self.loader is not None and self.loader.fallback:
            return self.loader.fallback
        return "; ".join(f"{name}: {why}" for name, why in self.choices.failures.items()) or None

    def set_epoch(self, epoch: int) -> None:
        super().set_epoch(epoch)
        if self.loader is not None:
            self.loader.set_epoch(epoch)

    def order(self):
        return self.loader.order() if self.loader is not None else super().order()

    def __iter__(self):
        if self.loader is not None:
            yield from self.loader
            return
        while True:
            name = self.choices.current
            batches = None
            try:
                loader = self.create(self.samples, self.spec, self.options, name)
                loader.set_epoch(self.epoch)
                batches = iter(loader)
                first = next(batches)
            except StopIteration:            # no rows this epoch: the backend works
                self.loader = loader
                return
            except Exception as err:
                if is_the_datas_fault(err):
                    raise
                close(batches)
                self.choices.failed(name, err)
                continue
            self.loader = loader
            break
        yield first
        yield from batches


def close(batches) -> None:
    """Stop a half-started generator so its backend lets go of threads and memory."""
    if batches is not None and hasattr(batches, "close"):
        try:
            batches.close()
        except Exception:      # it has already failed; its cleanup may fail too
            pass
