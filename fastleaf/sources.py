"""Where a CSV data set is (``--csv FILE --image-col NAME --label-col NAME ...``): plain data
that the config records and checks; reading it is :mod:`fastleaf.data.csv_source`'s work."""
from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path

from .errors import UsageError


@dataclass(frozen=True)
class CsvSource:
    """Where a CSV data set is: the file, its two columns, the images' folder, the test CSV."""

    csv: str
    image_col: str = "image"
    label_col: str = "label"
    images_root: str | None = None       # None: the CSV's folder
    test_csv: str | None = None          # None: the CSV's rows without a label

    @classmethod
    def create(cls, csv, image_col: str | None = None, label_col: str | None = None,
               images_root=None, test_csv=None) -> "CsvSource":
        """A source with absolute paths (recorded so, it is found from any folder)."""
        def absolute(path):
            return None if path is None else os.path.abspath(os.path.expanduser(str(path)))

        image_col, label_col = image_col or "image", label_col or "label"
        if image_col == label_col:
            raise UsageError(f"--image-col and --label-col both name column {image_col!r}")
        return cls(absolute(csv), image_col, label_col, absolute(images_root),
                   absolute(test_csv))

    @property
    def root(self) -> Path:
        return Path(self.images_root or os.path.dirname(self.csv))

    def __str__(self) -> str:
        return f"{self.csv} (images {self.image_col!r}, labels {self.label_col!r})"


FIELDS = tuple(f.name for f in fields(CsvSource))


def source_from_value(value, where: str) -> CsvSource:
    """A :class:`CsvSource` from a config's ``data:`` mapping (or a source already made)."""
    if isinstance(value, CsvSource):
        return value
    unknown = sorted(set(value) - set(FIELDS))
    if unknown or not isinstance(value.get("csv"), str):
        said = f"unknown key(s) {unknown}" if unknown else "no 'csv: FILE'"
        raise UsageError(f"{where}: data as a mapping describes a CSV ({', '.join(FIELDS)}); "
                         f"it has {said}")
    bad = [k for k, v in value.items() if v is not None and not isinstance(v, str)]
    if bad:
        raise UsageError(f"{where}: data: {bad[0]} must be text, got {value[bad[0]]!r}")
    return CsvSource.create(**value)
