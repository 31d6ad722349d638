"""Guards for output paths, checked before any work: never replace an input, never write
where it cannot, never write into the data folder.

    out = output_file("submission.csv", "--out", inputs=[test_csv, checkpoint, *images])
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from ..errors import FastleafError

# files that make a folder a finished or started run
RUN_FILES = ("config.yaml", "last.pt", "best.pt", "metrics.csv")


def real(path: str | os.PathLike) -> Path:
    return Path(os.path.realpath(os.path.expanduser(os.fspath(path))))


def is_inside(path: str | os.PathLike, folder: str | os.PathLike) -> bool:
    """Whether ``path`` (symlinks followed) is ``folder`` or lies under it."""
    path, folder = real(path), real(folder)
    return path == folder or folder in path.parents


def writable_folder(folder: Path) -> Path:
    """The nearest existing ancestor of ``folder``, which must be a writable directory."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise FastleafError(f"{existing} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise FastleafError(f"{existing} is read-only: cannot write under it")
    return existing


def output_file(out: str | os.PathLike, flag: str,
                inputs: Iterable[str | os.PathLike] = ()) -> Path:
    """Check that ``out`` can be written and is none of ``inputs`` (compared as real paths)."""
    path = Path(out)
    if path.is_dir():
        raise FastleafError(f"{flag} {out}: is a folder; give a file name")
    if path.exists() and not os.access(path, os.W_OK):
        raise FastleafError(f"{flag} {out}: the file is read-only")
    writable_folder(path.absolute().parent)
    target = real(path)
    for item in inputs:
        if real(item) == target:
            raise FastleafError(f"{flag} {out}: this is an input ({item}); writing it would "
                                f"destroy it, choose another file")
    return path


def refuse_inside_data(out: str | os.PathLike, data_root: str | os.PathLike | None,
                       flag: str) -> None:
    """Outputs never go into the data folder, where they would be read back as data."""
    if data_root is not None and is_inside(out, data_root):
        raise FastleafError(f"{flag} {out}: inside the data folder {data_root}; write outputs "
                            f"elsewhere (files there are read as data)")


def run_folder(run_dir: Path, *, resume: bool, overwrite: bool,
               data_root: str | os.PathLike | None) -> Path:
    """Check a training run folder before anything runs: a finished run is never overwritten
    unless asked (``--overwrite``) or continued (``--resume``)."""
    refuse_inside_data(run_dir, data_root, "--out")
    if run_dir.exists() and not run_dir.is_dir():
        raise FastleafError(f"--out {run_dir}: is a file, not a run folder")
    writable_folder(run_dir.absolute())
    found = [name for name in RUN_FILES if (run_dir / name).exists()]
    if found and not resume and not overwrite:
        raise FastleafError(f"--out {run_dir}: already holds a run ({', '.join(found)}); "
                            f"continue it with --resume {run_dir}, replace it with "
                            f"--overwrite, or choose another --out")
    return run_dir
