"""Pre-flight data check: every problem in train.csv, test.csv and their images, in one pass.

    report = check_data("data/classify-leaves")          # never raises on bad rows
    report.ok, report.errors(), report.warnings()
    drop = report.bad_rows(layout.train_csv)              # 0-based data rows (see csv_line)
    report.write_csv("runs/x/bad_rows.csv")

Each problem is a :class:`Finding` naming the CSV file, the line and the image.  Errors make a
row unusable (missing, empty, corrupt or unreadable image; path escaping the data folder; empty,
unknown or conflicting label); warnings are usable rows worth knowing about (non-JPEG behind a
.jpg name, non-RGB mode, unexpected size, duplicate rows, test images also in train).  A whole-file
problem (missing/empty train.csv, missing columns) has ``row=None`` and leaves nothing usable.

Unknown labels.  With a class list (``classes=``, e.g. a checkpoint's, or ``DIR/classes.json``)
every label outside it is an error.  Without one, train.csv's labels define the classes, so a
label counts as unknown only when it looks like a typo: it occurs exactly once and, after
lower-casing and turning spaces/hyphens into underscores, is within edit distance 2 of a label
that occurs more often.  Labels that break the style most labels follow (lower-case words
joined by ``_`` or ``-``) get a ``label_style`` warning.

Image files are read once each and checked in a thread pool (Pillow's decoder releases the GIL).
"""
from __future__ import annotations

import csv as csvlib
import os
import posixpath
import re
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..utils.atomic import atomic_path
from .check_images import ERROR, WARNING, FileInfo, inspect_files
from .csv_source import data_folder
from .table import (DataError, NameTooLong, csv_line, image_path, load_classes,
                    resolve_layout, spaced_twins)
from .table import read_frame as read_table_frame

LABEL_STYLE = re.compile(r"[a-z0-9]+(?:[_-][a-z0-9]+)*")   # acer_rubrum, crataegus_crus-galli
ODD_SHARE = 0.1          # at most this share of distinct labels (or one) may break the style
TYPO_DISTANCE = 2


@dataclass
class Finding:
    """One problem or note about one CSV row (``row=None``: the file as a whole)."""

    kind: str            # missing_file, corrupt, not_jpeg, unknown_label, path_escape, ...
    severity: str        # "error": the row cannot be used; "warning": usable, noted
    csv: Path
    row: int | None      # 0-based data row; its line in the file is csv_line(row)
    image: str | None    # the CSV's image string
    message: str         # full sentence naming the CSV file, the line and the image
    detail: str = ""     # the problem alone, without the location

    @property
    def line(self) -> int | None:
        return None if self.row is None else csv_line(self.row)

    def one_line(self) -> str:
        """``severity kind file:line image: problem`` on one line, for scripts and logs."""
        where = str(self.csv) if self.line is None else f"{self.csv}:{self.line}"
        image = "" if self.image is None else f" {self.image!r}"
        return f"{self.severity} {self.kind} {where}{image}: {' '.join(self.detail.split())}"


def finding(kind: str, severity: str, csv: Path, row: int | None, image: str | None,
            detail: str) -> Finding:
    where = f"{csv}" if row is None else f"{csv} line {csv_line(row)}"
    if image is not None:
        where += f" ({image!r})"
    return Finding(kind, severity, Path(csv), row, image, f"{where}: {detail}", detail)


@dataclass
class CheckReport:
    findings: list[Finding]
    rows_checked: int
    seconds: float
    images_checked: int = 0
    label_rule: str = ""          # how labels were judged, for the summary line

    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == ERROR]

    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == WARNING]

    @property
    def ok(self) -> bool:
        return not self.errors()

    def bad_rows(self, csv) -> set[int]:
        """0-based data rows of ``csv`` with an error (what ``--skip-bad`` drops)."""
        csv = Path(csv)
        return {f.row for f in self.errors() if f.row is not None and f.csv == csv}

    def counts(self) -> Counter:
        return Counter((f.severity, f.kind) for f in self.findings)

    def write_csv(self, path, findings: list[Finding] | None = None) -> Path:
        """Findings (default: all) as CSV (severity,kind,csv,line,image,message), atomically."""
        path = Path(path)
        findings = self.findings if findings is None else findings
        with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
            out = csvlib.writer(f, lineterminator="\n")
            out.writerow(["severity", "kind", "csv", "line", "image", "message"])
            for x in findings:
                out.writerow([x.severity, x.kind, x.csv, "" if x.line is None else x.line,
                              "" if x.image is None else x.image, x.message])
        return path


@dataclass
class Row:
    """One CSV data row, its path key (for duplicates) and the file to open (None: refused)."""

    csv: Path
    row: int
    image: str
    label: str | None
    key: str
    path: Path | None


# ---------------------------------------------------------------- CSV files

def read_frame(csv: Path, columns: tuple[str, ...], required: bool,
               findings: list[Finding]) -> pd.DataFrame | None:
    """The CSV as strings, or None after noting a whole-file problem."""
    frame, problem = read_table_frame(csv, columns)
    if problem and (required or problem[0] != "missing_csv"):
        findings.append(finding(problem[0], ERROR, csv, None, None, problem[1]))
    return frame


def path_key(image: str) -> str:
    """Normalised image path, so ``./images/1.jpg`` and ``images//1.jpg`` match."""
    return posixpath.normpath(image.strip().replace("\\", "/"))


def frame_rows(frame: pd.DataFrame, csv: Path, root: Path,
               findings: list[Finding]) -> list[Row]:
    """Rows with their file paths; empty and escaping paths are refused here, never opened."""
    labels = frame["label"].tolist() if "label" in frame.columns else [None] * len(frame)
    rows = []
    real_root = os.path.realpath(root)
    for i, (image, label) in enumerate(zip(frame["image"].tolist(), labels)):
        path = None
        if not image.strip():
            findings.append(finding("empty_image", ERROR, csv, i, image, "empty image path"))
        elif image != image.strip():
            findings.append(finding("spaces_in_name", ERROR, csv, i, image,
                                    f"the image name has spaces around it; did you mean "
                                    f"{image.strip()!r}?"))
        else:
            try:
                path = image_path(root, image, csv, i, real_root)
            except NameTooLong as err:
                findings.append(finding("name_too_long", ERROR, csv, i, image[:60] + "...",
                                        str(err).split(": ", 1)[1]))
            except DataError as err:
                how = "through a symbolic link" if "symbolic" in str(err) else \
                    "absolute or '..'"
                findings.append(finding("path_escape", ERROR, csv, i, image,
                                        f"image path escapes the data folder ({how}); "
                                        f"refused, not opened"))
        rows.append(Row(csv, i, image, label, path_key(image), path))
    return rows


def duplicate_findings(rows: list[Row]) -> list[Finding]:
    """The same image listed twice: a warning, or an error when the labels disagree."""
    groups: dict[str, list[Row]] = defaultdict(list)
    for r in rows:
        if r.image.strip():
            groups[r.key].append(r)
    out = []
    for group in groups.values():
        if len(group) < 2:
            continue
        labels = {r.label for r in group}
        if len(labels) > 1:
            listed = ", ".join(f"{r.label!r} (line {csv_line(r.row)})" for r in group)
            out += [finding("conflicting_labels", ERROR, r.csv, r.row, r.image,
                            f"the same image is listed with different labels: {listed}")
                    for r in group]
            continue
        first = group[0]
        out += [finding("duplicate_row", WARNING, r.csv, r.row, r.image,
                        f"the same image is already listed on line {csv_line(first.row)}; "
                        f"it would count twice") for r in group[1:]]
    return out


def test_in_train_findings(train: list[Row], test: list[Row]) -> list[Finding]:
    """Test rows whose image path is also a train row (compared as normalised paths)."""
    first = {}
    for r in train:
        first.setdefault(r.key, r)
    return [finding("test_in_train", WARNING, r.csv, r.row, r.image,
                    f"also in {first[r.key].csv.name} line {csv_line(first[r.key].row)} "
                    f"(label {first[r.key].label!r}): a test image the model trains on")
            for r in test if r.image.strip() and r.key in first]


# ---------------------------------------------------------------- labels

def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions), one row at a time."""
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def canonical_label(label: str) -> str:
    return re.sub(r"[\s\-]+", "_", label.strip().lower())


def closest(label: str, candidates) -> tuple[str | None, int]:
    best, best_d = None, 1 << 30
    for other in candidates:
        d = edit_distance(canonical_label(label), canonical_label(other))
        if d < best_d:
            best, best_d = other, d
    return best, best_d


def label_findings(rows: list[Row], classes: list[str] | None, source: str) -> list[Finding]:
    """Empty labels, labels outside ``classes`` or, without a list, likely typos and odd styles."""
    out = [finding("empty_label", ERROR, r.csv, r.row, r.image, "empty label")
           for r in rows if not r.label.strip()]
    labelled = [r for r in rows if r.label.strip()]
    line_of = {(r.csv, r.row): r for r in labelled}
    for first, row in spaced_twins({(r.csv, r.row): r.label for r in labelled}):
        r = line_of[row]
        out.append(finding("spaced_label", ERROR, r.csv, r.row, r.image,
                           f"label {r.label!r} and {line_of[first].label!r} (line "
                           f"{csv_line(first[1])}) differ only in spaces around them; write "
                           f"one name"))
    if classes is not None:
        known = set(classes)
        for r in labelled:
            if r.label not in known:
                near, d = closest(r.label, classes)
                hint = f"; closest: {near!r}" if near is not None and d <= TYPO_DISTANCE else ""
                out.append(finding("unknown_label", ERROR, r.csv, r.row, r.image,
                                   f"label {r.label!r} is not one of the {len(classes)} classes "
                                   f"of {source}{hint}"))
        return out
    counts = Counter(r.label for r in labelled)
    common = [label for label, n in counts.items() if n > 1]
    typos = {}
    for label in (label for label, n in counts.items() if n == 1):
        near, d = closest(label, common)
        if near is not None and d <= TYPO_DISTANCE:
            typos[label] = near
    out += [finding("single_image_class", WARNING, r.csv, r.row, r.image,
                    f"label {r.label!r} has this one image: it can never be both trained on "
                    f"and validated, nor stratified into folds")
            for r in labelled if counts[r.label] == 1 and r.label not in typos]
    odd = sum(not LABEL_STYLE.fullmatch(label) for label in counts)
    strict_style = odd < len(counts) / 2 and odd <= max(1, ODD_SHARE * len(counts))
    seen = set()
    for r in labelled:
        if r.label in typos:
            out.append(finding("unknown_label", ERROR, r.csv, r.row, r.image,
                               f"label {r.label!r} occurs only once and is likely a typo of "
                               f"{typos[r.label]!r} ({counts[typos[r.label]]} rows)"))
        elif strict_style and not LABEL_STYLE.fullmatch(r.label) and r.label not in seen:
            seen.add(r.label)
            out.append(finding("label_style", WARNING, r.csv, r.row, r.image,
                               f"label {r.label!r} ({counts[r.label]} rows) breaks the "
                               f"lower-case words joined by _ or - style of the other labels"))
    return out


# ---------------------------------------------------------------- image files

def image_findings(rows: list[Row], infos: dict[Path, FileInfo],
                   image_size: int | None) -> list[Finding]:
    """Each file's problems on every row that names it, plus unexpected sizes."""
    sizes = Counter(i.size for i in infos.values() if i.size and not i.has_error)
    expect = (image_size, image_size) if image_size else (sizes.most_common(1)[0][0]
                                                          if sizes else None)
    out = []
    for r in rows:
        info = infos.get(r.path) if r.path is not None else None
        if info is None:
            continue
        out += [finding(kind, sev, r.csv, r.row, r.image, detail)
                for kind, sev, detail in info.problems]
        if expect and info.size and info.size != expect and not info.has_error:
            out.append(finding("resized", WARNING, r.csv, r.row, r.image,
                               f"{info.size[0]}x{info.size[1]} pixels, not "
                               f"{expect[0]}x{expect[1]}; it will be resized"))
    return out


def content_findings(train: list[Row], test: list[Row],
                     infos: dict[Path, FileInfo]) -> list[Finding]:
    """Same bytes under another name: test copies of train images, repeated train images."""
    first: dict[str, Row] = {}
    out = []
    for r in train:
        digest = infos[r.path].digest if r.path in infos else None
        if digest is None:
            continue
        seen = first.setdefault(digest, r)
        if seen.key != r.key:
            out.append(finding("duplicate_image", WARNING, r.csv, r.row, r.image,
                               f"same bytes as {seen.image!r} on line {csv_line(seen.row)} "
                               f"(labels {seen.label!r} and {r.label!r})"))
    for r in test:
        seen = first.get(infos[r.path].digest) if r.path in infos else None
        if seen is not None and seen.key != r.key:
            out.append(finding("test_in_train", WARNING, r.csv, r.row, r.image,
                               f"same bytes as {seen.csv.name} line {csv_line(seen.row)} "
                               f"({seen.image!r}, label {seen.label!r}): a copy of a train image"))
    return out


# ---------------------------------------------------------------- the check

def check_data(data_dir, *, classes: list[str] | None = None, decode: bool = True,
               workers: int | None = None, image_size: int | None = None) -> CheckReport:
    """Check train.csv, test.csv and every image they name; collect findings, never raise on them.

    Args:
        data_dir: Kaggle-layout folder, or None for the repository layout (references/ + data/).
        classes: the valid class names (e.g. a checkpoint's); default ``DIR/classes.json`` when
            present, else train.csv's own labels with the typo rule of the module docstring.
        decode: fully decode every image (off: headers, end markers and hashes only).
        workers: threads reading and decoding images (default: Python's thread-pool default).
        image_size: the expected side in pixels; None expects the most common size in the set.

    Returns:
        A :class:`CheckReport`, errors first.  Raises :class:`DataError` only when the data
        folder itself is missing.
    """
    start = time.perf_counter()
    layout = resolve_layout(data_dir)
    findings: list[Finding] = []
    rule = "train.csv's own labels (typo rule)"
    if classes is not None:
        rule = "the given class list"
    elif data_dir is not None and (data_folder(data_dir) / "classes.json").is_file():
        classes, rule = load_classes(data_folder(data_dir) / "classes.json"), "classes.json"
    train_frame = read_frame(layout.train_csv, ("image", "label"), True, findings)
    test_frame = read_frame(layout.test_csv, ("image",), False, findings)
    train = [] if train_frame is None else frame_rows(train_frame, layout.train_csv,
                                                      layout.image_root, findings)
    test = [] if test_frame is None else frame_rows(test_frame, layout.test_csv,
                                                    layout.image_root, findings)
    findings += duplicate_findings(train) + duplicate_findings(test)
    findings += test_in_train_findings(train, test)
    findings += label_findings(train, classes, rule)

    paths = list(dict.fromkeys(r.path for r in train + test if r.path is not None))
    infos = inspect_files(paths, decode, workers)
    findings += image_findings(train + test, infos, image_size)
    findings += content_findings(train, test, infos)

    order = {layout.train_csv: 0, layout.test_csv: 1}
    findings.sort(key=lambda f: (f.severity != ERROR, order.get(f.csv, 2),
                                 -1 if f.row is None else f.row, f.kind))
    return CheckReport(findings, len(train) + len(test), time.perf_counter() - start,
                       len(paths), rule + (f", {len(classes)} classes" if classes else ""))
