"""SIGINT / SIGTERM: finish the current step, exit non-zero with a resume hint.

``last.pt`` already holds the end of the last finished epoch, the one state that resumes exactly.
"""
from __future__ import annotations

import signal
import threading


class GracefulStop:
    """Context manager that turns the first SIGINT/SIGTERM into a flag; a second one aborts."""

    def __init__(self):
        self.signum: int | None = None
        self._previous = {}

    def __call__(self) -> bool:
        return self.signum is not None

    def _handle(self, signum, frame):
        if self.signum is not None:          # asked twice: stop now
            raise KeyboardInterrupt
        self.signum = signum

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        return False

    @property
    def exit_code(self) -> int:
        return 128 + (self.signum or 0)


class TrainingInterrupted(Exception):
    """Raised when a stop signal arrived; ``last.pt`` holds the last finished epoch."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code
