"""Built-in recipes: the YAML files in ``configs/`` at the repository root, shipped inside the
package as ``fastleaf/configs/``.

    fastleaf configs                          # one line per recipe
    fastleaf configs show resnet18 > my.yaml  # the YAML, to copy and edit
    fastleaf train --data DIR --config resnet18
    fastleaf train --data DIR --config my.yaml

This module finds the files and reads their descriptions; :func:`fastleaf.config.load_recipe`
reads a recipe's options (the config's parser, so the finder sits below the config).

A recipe is a YAML file of ``TrainConfig`` keys. Adding one is dropping ``NAME.yaml`` into
``configs/`` whose first line is ``# description: what it reproduces`` (a ``description:`` key
works too; the config loader ignores it), and a line for it in ``configs/README.md``.
"""
from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING
from .errors import MissingFileError

if TYPE_CHECKING:   # importlib.resources.abc is Python 3.11+
    from importlib.resources.abc import Traversable

SUFFIX = ".yaml"


@dataclass(frozen=True)
class Recipe:
    name: str
    description: str
    values: dict    # only the options the file sets; TrainConfig supplies the rest


def recipe_dir() -> Traversable:
    # importlib.resources rather than __file__, so the recipes are found in any installed layout
    installed = resources.files("fastleaf") / "configs"
    if installed.is_dir():
        return installed
    # a source checkout (on PYTHONPATH, or `pip install -e .`): the one copy beside the package
    return Path(__file__).resolve().parents[1] / "configs"


def recipe_names() -> list[str]:
    return sorted(entry.name[:-len(SUFFIX)] for entry in recipe_dir().iterdir()
                  if entry.name.endswith(SUFFIX) and entry.is_file())


def recipe_file(name: str) -> Traversable:
    """The built-in recipe ``name`` (``cnn`` or ``cnn.yaml``); a clear error for any other name."""
    stem = name[:-len(SUFFIX)] if name.endswith(SUFFIX) else name
    if stem not in recipe_names():
        raise MissingFileError(f"no built-in recipe {name!r}; built-in recipes: "
                                f"{', '.join(recipe_names())} (fastleaf configs lists them)")
    return recipe_dir() / f"{stem}{SUFFIX}"


def describe(text: str) -> str:
    """A recipe's one-line description: its ``# description:`` comment or ``description`` key,
    else its first comment line."""
    comments = [line.lstrip("#").strip() for line in text.splitlines()
                if line.lstrip().startswith("#")]
    for line in text.splitlines():
        key, _, rest = line.lstrip("# ").partition(":")
        if key.strip() == "description" and rest.strip():
            return rest.strip().strip("'\"")
    return comments[0] if comments else ""


def locate_config(source: str | Path) -> tuple[Traversable | Path, str | None]:
    """(file to read, note for the user) for a ``--config`` value.

    An existing file wins, so a user's edited ``resnet18.yaml`` is taken as it is. Otherwise a
    built-in name (``cnn``, ``cnn.yaml``); a missing path whose file name is a built-in recipe
    (``configs/cnn.yaml`` typed outside a checkout) takes the built-in and says so.
    """
    path = Path(source)
    if path.is_file():
        return path, None
    stem = path.name[:-len(SUFFIX)] if path.name.endswith(SUFFIX) else path.name
    if stem not in recipe_names():
        raise MissingFileError(f"--config {source}: no such file and no built-in recipe of that "
                                f"name; built-in recipes: {', '.join(recipe_names())}")
    note = None
    if str(source) not in (stem, stem + SUFFIX):
        note = (f"{source} not found; using the built-in recipe {stem!r} "
                f"(fastleaf configs show {stem} prints it)")
    return recipe_file(stem), note
