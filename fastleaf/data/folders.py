"""Folder-per-class data (torchvision's ImageFolder layout) as a Kaggle-layout view.

    DIR/train/<class>/*.jpg   [DIR/val/<class>/*.jpg]   [DIR/test/**.jpg]
    DIR/<class>/*.jpg

``--data DIR`` without a train.csv is read as one of these.  The tree is indexed into a
``train.csv`` (``image,label,split``: paths relative to DIR; ``split`` is ``val`` for the rows
of ``DIR/val``, which then validate instead of a random split) and a ``test.csv``, kept in a
cache folder outside the data (``$FASTLEAF_CACHE``, else ``~/.cache/fastleaf``): the user's
folder is never written to.  Every command then reads the view as it reads Kaggle's files, so
the data check, k-fold, evaluation and prediction work unchanged.  Class names are the sorted
folder names; hidden files and files that are not images are reported once, never trained on.
A folder that mixes loose images with class folders is refused in one line naming both.
"""
from __future__ import annotations

import csv
import hashlib
import io
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import FastleafError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
SPLITS = ("train", "val", "test")
REPORTED: set[str] = set()        # trees whose skipped files were already reported


class LayoutError(FastleafError, ValueError):
    """A data folder whose layout cannot be told apart (named in the message)."""


@dataclass
class Tree:
    root: Path
    kind: str                                   # "split" (train/val/test) or "classes"
    rows: list[tuple[str, str, str]] = field(default_factory=list)   # image, label, split
    test: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)    # hidden files and non-images

    @property
    def classes(self) -> list[str]:
        return sorted({label for _, label, _ in self.rows})


def is_image(name: str) -> bool:
    return Path(name).suffix.lower() in IMAGE_SUFFIXES


def visible(names) -> list[str]:
    return sorted(n for n in names if not n.startswith("."))


def files_under(folder: Path, root: Path, skipped: list[str]) -> list[str]:
    """Image files under ``folder`` (any depth) as paths relative to ``root``, sorted."""
    found = []
    for here, dirs, names in os.walk(folder):
        hidden = [d for d in dirs if d.startswith(".")]
        dirs[:] = visible(dirs)
        for name in sorted(names) + [d + "/" for d in hidden]:
            relative = os.path.relpath(os.path.join(here, name), root)
            if name.startswith(".") or not is_image(name):
                skipped.append(relative)
            else:
                found.append(relative)
    return found


def class_rows(folder: Path, root: Path, split: str, tree: Tree) -> None:
    """``folder/<class>/...`` into rows; loose images beside the class folders are refused."""
    entries = visible(os.listdir(folder))
    classes = [e for e in entries if (folder / e).is_dir()]
    loose = [e for e in entries if (folder / e).is_file() and is_image(e)]
    if loose and classes:
        raise LayoutError(f"{folder}: holds both images ({loose[0]}, ...) and class folders "
                          f"({classes[0]}/, ...); put every image in its class's folder")
    if not classes:
        raise LayoutError(f"{folder}: no class folders (expected {folder}/<class>/<image>)")
    for name in classes:
        images = files_under(folder / name, root, tree.skipped)
        if not images:
            raise LayoutError(f"{folder / name}: a class folder with no images")
        tree.rows += [(image, name, split) for image in images]


def scan(root: Path) -> Tree:
    """The tree under ``root``: split folders (train/, val/, test/) or bare class folders."""
    entries = visible(os.listdir(root))
    if "train" in entries and (root / "train").is_dir():
        tree = Tree(root, "split")
        class_rows(root / "train", root, "train", tree)
        if (root / "val").is_dir():
            class_rows(root / "val", root, "val", tree)
            unknown = sorted({label for _, label, s in tree.rows if s == "val"}
                             - {label for _, label, s in tree.rows if s == "train"})
            if unknown:
                raise LayoutError(f"{root / 'val' / unknown[0]}: a validation class with no "
                                  f"training folder in {root / 'train'}")
        if (root / "test").is_dir():
            tree.test = files_under(root / "test", root, tree.skipped)
        return tree
    tree = Tree(root, "classes")
    class_rows(root, root, "train", tree)
    return tree


def is_folder_layout(root: Path) -> bool:
    """A folder with no train.csv or test.csv that holds ``train/`` or two class folders or
    more.  A Kaggle folder that lost its train.csv (``images/`` alone) is not one: it is
    reported as missing its CSV."""
    if not root.is_dir() or (root / "train.csv").exists() or (root / "test.csv").exists():
        return False
    folders = [e for e in visible(os.listdir(root)) if (root / e).is_dir()]
    return "train" in folders or len(folders) >= 2


def layouts_dir() -> Path:
    """Where the views of folder trees and CSVs are kept, outside every data folder."""
    base = Path(os.environ.get("FASTLEAF_CACHE") or Path.home() / ".cache" / "fastleaf")
    return base / "layouts"


def cache_dir(root: Path) -> Path:
    key = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:16]
    return layouts_dir() / f"{root.resolve().name}-{key}"


def csv_text(header: list[str], rows) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def write_if_changed(path: Path, text: str) -> None:
    from ..utils.atomic import write_text_atomic

    if not path.is_file() or path.read_text() != text:
        write_text_atomic(path, text)


def index_tree(root: Path) -> tuple[Path, Path]:
    """Scan ``root`` and write its view; returns (train.csv, test.csv) of the view."""
    tree = scan(root)
    view = cache_dir(root)
    view.mkdir(parents=True, exist_ok=True)
    train_csv, test_csv = view / "train.csv", view / "test.csv"
    write_if_changed(train_csv, csv_text(["image", "label", "split"], tree.rows))
    if tree.test:
        write_if_changed(test_csv, csv_text(["image"], ([image] for image in tree.test)))
    else:
        test_csv.unlink(missing_ok=True)
    report(tree, view)
    return train_csv, test_csv


def report(tree: Tree, view: Path) -> None:
    """Say once per process which layout was found and what was left out."""
    key = str(tree.root.resolve())
    if key in REPORTED:
        return
    REPORTED.add(key)
    from ..utils.console import console

    val = sum(1 for _, _, s in tree.rows if s == "val")
    kind = "train/<class>/ folders" if tree.kind == "split" else "<class>/ folders"
    console.print(f"data: {tree.root} read as {kind}: {len(tree.rows) - val} training"
                  + (f", {val} validation (val/)" if val else "")
                  + (f", {len(tree.test)} test (test/)" if tree.test else "")
                  + f" images of {len(tree.classes)} classes; index {view}",
                  soft_wrap=True, markup=False)
    if tree.skipped:
        console.print(f"data: left out {len(tree.skipped)} hidden or non-image files, e.g. "
                      + ", ".join(tree.skipped[:3]), soft_wrap=True, markup=False)
