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
# what a run (or a k-fold folder) writes itself: never an output of another command
RUN_OWN = (*RUN_FILES, "classes.json", "top.json", "bad_rows.csv", "oof.csv", "oof_probs.npy",
           "folds.csv")
RUN_SUBFOLDERS = ("top", "tb")
# what a Kaggle-layout data folder consists of, besides the images under it
DATA_OWN = ("train.csv", "test.csv", "classes.json", "data.yaml", "sample_submission.csv")


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


def is_run_folder(folder: Path) -> bool:
    """A run or a k-fold folder: what it holds once it has started (not a lone classes.json)."""
    return any((folder / name).is_file() for name in (*RUN_FILES, "top.json", "oof.csv",
                                                     "folds.csv"))


def is_data_folder(folder: Path) -> bool:
    return (folder / "train.csv").is_file() or (folder / "test.csv").is_file()


def owner(target: Path) -> str | None:
    """What ``target`` (a real path) belongs to, said for an error; None when it is free.

    A run's own files (``RUN_OWN``, ``top/``, ``tb/``) whether they exist yet or not; a data
    folder's CSVs, class list and pointer, and every existing file in a folder under it.
    """
    parent = target.parent
    if target.name in RUN_OWN and is_run_folder(parent):
        return f"a file of the run folder {parent}"
    if parent.name in RUN_SUBFOLDERS and is_run_folder(parent.parent):
        return f"a file of the run folder {parent.parent}"
    if target.name in DATA_OWN and is_data_folder(parent):
        return f"a file of the data folder {parent}"
    if target.exists():
        for folder in (parent.parent, parent.parent.parent):
            if is_data_folder(folder):
                return f"a file of the data folder {folder}"
    return None


def output_file(out: str | os.PathLike, flag: str,
                inputs: Iterable[str | os.PathLike] = ()) -> Path:
    """Check that ``out`` can be written and destroys nothing: none of ``inputs`` (compared
    as real paths), no file a run or a data folder consists of (see :func:`owner`)."""
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
    belongs = owner(target)
    if belongs:
        raise FastleafError(f"{flag} {out}: {belongs}; writing it would destroy it, choose "
                            f"another file")
    return path


def output_folder(out: str | os.PathLike, flag: str, *, data_ok: bool = False) -> Path:
    """Check a folder that a command fills with files of its own names (PNGs, a report, a
    data set): a writable folder, and (unless ``data_ok``) not a data folder or inside one,
    where its files would sit among the images."""
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise FastleafError(f"{flag} {out}: is a file, not a folder")
    writable_folder(path.absolute())
    if not data_ok:
        target = real(path)
        for folder in (target, target.parent, target.parent.parent):
            if is_data_folder(folder):
                raise FastleafError(f"{flag} {out}: inside the data folder {folder}; write "
                                    f"outputs elsewhere")
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
