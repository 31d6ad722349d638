"""One training at a time per run folder: an advisory ``flock`` on ``RUN/.lock``.

    with hold_run_folder(Path("runs/r18")):
        ...   # a second ``fastleaf train --out runs/r18`` is refused, naming this process

The kernel drops a ``flock`` when its process dies (even on ``kill -9``), so a lock file left
behind by a crash never blocks the next run: only a live holder does.
"""
from __future__ import annotations

import os
import socket
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from ..errors import FastleafError
from ..utils.atomic import writing

LOCK = ".lock"


class RunFolderBusy(FastleafError):
    """Another live process trains into the same run folder."""


def _try_lock(path: Path) -> int | None:
    """An fd holding ``path``'s exclusive lock, or None when a live process holds it."""
    import fcntl

    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        # the holder removed the file between our open and our lock: lock the new one
        os.close(fd)


def _holder(path: Path) -> str:
    try:
        said = path.read_text().strip()
    except OSError:
        said = ""
    return said or "another process"


@contextmanager
def hold_run_folder(run_dir: Path, enabled: bool = True):
    """Hold ``run_dir`` for this process; :class:`RunFolderBusy` when a live one holds it.

    A folder this call had to create is removed again when it is left empty (a run that could
    not start leaves no trace).
    """
    if not enabled:
        yield
        return
    created = not run_dir.exists()
    path = run_dir / LOCK
    with writing(run_dir):
        run_dir.mkdir(parents=True, exist_ok=True)
        fd = _try_lock(path)
    if fd is None:
        _remove_if_empty(run_dir, created)
        raise RunFolderBusy(f"--out {run_dir}: a training holds this run folder "
                            f"({_holder(path)}); wait for it to end or choose another --out")
    try:
        started = datetime.now().isoformat(timespec="seconds")
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}, started {started}\n"
                 .encode())
        yield
    finally:
        # unlinked while still locked: a process that opened it meanwhile sees the new inode
        path.unlink(missing_ok=True)
        os.close(fd)
        _remove_if_empty(run_dir, created)


def _remove_if_empty(run_dir: Path, created: bool) -> None:
    if created:
        try:
            run_dir.rmdir()
        except OSError:       # the run wrote files: it stays
            pass
