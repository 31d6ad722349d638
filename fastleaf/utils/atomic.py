"""Atomic file writes: a temp file in the same folder, then ``os.replace``.

A crash at any moment leaves either the old file or the new one, never a truncated one.
"""
from __future__ import annotations

import errno
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

from ..errors import FastleafError

# write failures that are the machine's state, not a bug: said in one line
FULL = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded",
        errno.EROFS: "read-only file system", errno.EACCES: "permission denied"}


def disk_error(err: OSError, path) -> FastleafError | None:
    """A full or read-only disk met while writing ``path``, in one line; None for other
    errors (those are not the machine's state)."""
    if err.errno not in FULL:
        return None
    return FastleafError(f"cannot write {err.filename or path}: {FULL[err.errno]}")


@contextmanager
def writing(path: str | os.PathLike):
    """Any write under ``path`` in this block: a full or read-only disk is said in one line."""
    try:
        yield
    except OSError as err:
        said = disk_error(err, path)
        if said is None:
            raise
        raise said from None


@contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temp path next to ``path``; on success it replaces ``path``.

    A full disk (or a read-only one) raises :class:`FastleafError` naming ``path``; the old
    file, if any, is left as it was.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        os.chmod(tmp, 0o666 & ~_umask())     # mkstemp makes 0600; results are ordinary files
        yield Path(tmp)
        os.replace(tmp, path)
    except OSError as err:
        said = disk_error(err, None)
        if said is None:
            raise
        # the final name, not the temp file's: that is the file the user knows
        raise FastleafError(f"cannot write {path}: {FULL[err.errno]}") from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
