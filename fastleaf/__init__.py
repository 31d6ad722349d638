"""fastleaf: a fast, practical image-classification trainer for Kaggle's Classify Leaves."""
from __future__ import annotations

import re
from pathlib import Path


def package_version() -> str:
    """The installed distribution's version; in a checkout never installed, pyproject.toml's."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("fastleaf")
    except PackageNotFoundError:
        pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
        try:
            found = re.search(r'^version\s*=\s*"([^"]+)"', pyproject.read_text(), re.MULTILINE)
        except OSError:
            found = None
        return found.group(1) if found else "0+unknown"


__version__ = package_version()
