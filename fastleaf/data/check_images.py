"""Reading each image file once for the data check: header and pixel limit, full decode,
mode, EXIF orientation, a content hash.  Problems are ``(kind, severity, detail)``; the check
turns them into findings on every row that names the file.
"""
from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ..utils.console import tracked
from .imageio import (Header, ImageDecodeError, ImageTooLarge, decode_bytes, probe,
                      read_regular)

ERROR, WARNING = "error", "warning"
JPEG_SOI, JPEG_EOI = b"\xff\xd8\xff", b"\xff\xd9"
EOI_TAIL = 4096          # bytes at the end searched for the end-of-image marker
MODE_NAMES = {"L": "grayscale", "LA": "grayscale+alpha", "1": "black-and-white", "P": "palette",
              "PA": "palette+alpha", "RGBA": "RGBA", "CMYK": "CMYK", "YCbCr": "YCbCr",
              "I": "32-bit grayscale", "I;16": "16-bit grayscale", "F": "float grayscale"}

MAX_READERS = 64


@dataclass
class FileInfo:
    """What reading one image file found: problems as (kind, severity, detail)."""

    problems: list[tuple[str, str, str]] = field(default_factory=list)
    size: tuple[int, int] | None = None          # (width, height)
    digest: str | None = None

    @property
    def has_error(self) -> bool:
        return any(sev == ERROR for _, sev, _ in self.problems)


def inspect_file(path: Path, decode: bool = True) -> FileInfo:
    """Read one image file once: existence, header and pixel limit, full decode, mode, EXIF.

    With ``decode`` the verdict is the decoder's (trailing bytes after a complete image are
    fine); without it, a JPEG lacking its end-of-image marker near the end is called truncated.
    File contents are never quoted in a finding.
    """
    try:
        data = read_regular(path)
    except FileNotFoundError:
        return FileInfo([("missing_file", ERROR, f"image file not found: {path}")])
    except OSError as err:
        return FileInfo([("unreadable", ERROR, f"cannot read {path}: {err.strerror or err}")])
    if not data:
        return FileInfo([("empty_file", ERROR, "image file is empty (0 bytes)")])
    info = FileInfo(digest=hashlib.blake2b(data, digest_size=16).hexdigest())
    try:
        header = probe(data, path)
    except ImageTooLarge as err:
        info.problems.append(("too_large", ERROR, without_path(err, path)))
        return info
    except ImageDecodeError:
        if data.startswith(JPEG_SOI):     # a JPEG cut short inside its header
            info.problems.append(("corrupt", ERROR, "truncated or damaged JPEG: its header "
                                                    "cannot be read"))
        else:
            info.problems.append(("not_image", ERROR, "not an image file (no image header "
                                                      "that Pillow knows)"))
        return info
    info.size = header.size
    if decode:
        try:
            decode_bytes(data, path)
        except ImageDecodeError as err:
            info.problems.append(("corrupt", ERROR, f"corrupt image, cannot be decoded "
                                                    f"({without_path(err, path)})"))
            return info
    elif data.startswith(JPEG_SOI) and JPEG_EOI not in data[-EOI_TAIL:]:
        info.problems.append(("corrupt", ERROR, "truncated JPEG: no end-of-image marker "
                                                "(FFD9) at the end"))
        return info
    info.problems += header_notes(header, path)
    return info


def without_path(err: Exception, path: Path) -> str:
    return str(err).removeprefix(f"{path}: ")


def header_notes(header: Header, path: Path) -> list[tuple[str, str, str]]:
    """Usable but worth knowing: a non-JPEG, a non-RGB mode, an EXIF rotation."""
    notes = []
    if header.format not in ("JPEG", "MPO"):
        notes.append(("not_jpeg", WARNING, f"a {header.format} file behind a "
                                           f"{path.suffix or 'suffix-less'} name; it decodes, "
                                           f"through the slower Pillow path"))
    if header.mode != "RGB":
        notes.append(("converted_mode", WARNING, f"{MODE_NAMES.get(header.mode, header.mode)} "
                                                 f"image (mode {header.mode}); converted to RGB"))
    if header.orientation != 1:
        notes.append(("exif_rotated", WARNING, f"EXIF orientation {header.orientation}: the "
                                               f"image is turned upright when decoded"))
    return notes


def reader_threads(workers: int | None) -> int | None:
    """Threads for reading image files: ``workers``, at most ``MAX_READERS`` (the disk and
    the cores are saturated long before, and a machine runs out of threads after that)."""
    return None if workers is None else min(workers, MAX_READERS)


def inspect_files(paths: list[Path], decode: bool, workers: int | None) -> dict[Path, FileInfo]:
    """:func:`inspect_file` over every distinct path, in a thread pool.

    libjpeg reports damaged JPEG data (half a file with an end marker appended) only as a
    warning written straight to file descriptor 2, and decodes it with grey blocks.  The
    pool's decodes run with that descriptor captured; when a warning shows, the JPEGs are
    decoded again one at a time to find the ones it came from.
    """
    with captured_fd2() as said, ThreadPoolExecutor(reader_threads(workers)) as pool:
        infos = dict(zip(paths, tracked(pool.map(lambda p: inspect_file(p, decode), paths),
                                        "checking images", total=len(paths))))
    if decode and jpeg_warnings(said[0]):
        for path, info in infos.items():
            if not info.has_error and path.suffix.lower() in (".jpg", ".jpeg"):
                info.problems += damaged_jpeg_data(path)
    return infos


def jpeg_warnings(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines()
            if line.startswith(("Corrupt JPEG data", "Premature end of JPEG file"))]


def damaged_jpeg_data(path: Path) -> list[tuple[str, str, str]]:
    """A ``corrupt`` problem when decoding ``path`` alone makes libjpeg warn."""
    with captured_fd2() as said:
        try:
            decode_bytes(read_regular(path), path)
        except (OSError, ImageDecodeError):
            return []
    warned = jpeg_warnings(said[0])
    return [("corrupt", ERROR, f"damaged JPEG data, decoded with grey blocks (libjpeg: "
                               f"{warned[0]})")] if warned else []


@contextmanager
def captured_fd2():
    """Everything written to file descriptor 2 meanwhile (by C libraries too), in
    ``said[0]`` once the block ends; lines that are not libjpeg's go on to stderr."""
    said = [""]
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield said
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            said[0] = tmp.read().decode("utf-8", "replace")
            sys.stderr.write("".join(line for line in said[0].splitlines(keepends=True)
                                     if not jpeg_warnings(line)))
