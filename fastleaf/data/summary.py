"""A data set at a glance: rows, classes, per-class counts, image sizes and modes, duplicates.

Image files are opened with Pillow for their headers only (size, mode, format: no decode) and
hashed to find identical files, so all 27k Classify Leaves images take seconds.

    from fastleaf.data.summary import summarize_data
    info = summarize_data("data/classify-leaves", sample=500)
    info["classes"], info["head"], info["sizes"], info["duplicate_files"]
"""
from __future__ import annotations

import hashlib
from collections import Counter, defaultdict

import numpy as np

from .imageio import ImageDecodeError, probe, read_regular
from .table import Samples, csv_line, load_table


def class_counts(samples: Samples, classes: list[str]) -> dict[str, int]:
    """Images per class, largest first (ties by name)."""
    counts = np.bincount(samples.labels, minlength=len(classes))
    return dict(sorted(zip(classes, counts.tolist()), key=lambda kv: (-kv[1], kv[0])))


def duplicate_rows(parts: list[Samples]) -> list[dict]:
    """Image entries listed more than once across the CSVs, with each ``file row`` listing them."""
    seen = defaultdict(list)
    for samples in parts:
        for image, row in zip(samples.images, samples.rows):
            seen[image].append(f"{samples.csv.name} row {csv_line(row)}")
    return [{"image": image, "rows": rows} for image, rows in seen.items() if len(rows) > 1]


def inspect_images(entries: list[tuple[str, object, str]]) -> dict:
    """Header-only look at ``(image, path, where)`` entries.

    Returns sizes, modes and formats (counts), unreadable files and groups of identical files.
    """
    sizes, modes, formats = Counter(), Counter(), Counter()
    unreadable, by_hash = [], defaultdict(list)
    for image, path, where in entries:
        try:
            data = read_regular(path)
            header = probe(data, path)      # the header, not the pixels; the pixel limit holds
        except (OSError, ImageDecodeError) as err:
            unreadable.append({"image": image, "where": where, "error": str(err)[:200]})
            continue
        sizes[f"{header.size[0]}x{header.size[1]}"] += 1
        modes[header.mode] += 1
        formats[header.format or "?"] += 1
        by_hash[hashlib.sha1(data).hexdigest()].append(image)
    return {"images_checked": len(entries), "sizes": dict(sizes.most_common()),
            "modes": dict(modes.most_common()), "formats": dict(formats.most_common()),
            "unreadable": unreadable,
            "duplicate_files": [group for group in by_hash.values() if len(group) > 1]}


def summarize_data(data_dir, sample: int | None = None, seed: int = 0, top: int = 10) -> dict:
    """Counts, per-class balance, image headers and duplicates of a Kaggle-layout folder.

    Args:
        data_dir: folder with train.csv (and test.csv) and the images.
        sample: inspect this many images picked at random (seeded); None or 0: every image.
        seed: seeds the sample.
        top: how many classes the ``head`` and ``tail`` lists hold.

    Returns:
        A dict: ``train_rows``, ``test_rows``, ``classes``, ``class_counts`` (largest first),
        ``head``, ``tail``, ``per_class`` (min/median/mean/max), ``images_checked``, ``sizes``,
        ``modes``, ``formats``, ``unreadable``, ``duplicate_rows``, ``duplicate_files``.
    """
    table = load_table(data_dir, val_fraction=0.0, seed=seed)
    parts = [table.all_train] + ([table.test] if table.test is not None else [])
    counts = class_counts(table.all_train, table.classes)
    values = np.array(list(counts.values()))
    entries = [(image, path, f"{s.csv.name} row {csv_line(row)}") for s in parts
               for image, path, row in zip(s.images, s.paths, s.rows)]
    if sample and sample < len(entries):
        pick = np.sort(np.random.default_rng(seed).choice(len(entries), sample, replace=False))
        entries = [entries[i] for i in pick]
    return {
        "data": str(data_dir), "train_rows": len(table.all_train),
        "test_rows": len(table.test) if table.test is not None else 0,
        "classes": table.num_classes, "class_counts": counts,
        "head": list(counts.items())[:top], "tail": list(counts.items())[-top:][::-1],
        "per_class": {"min": int(values.min()), "median": float(np.median(values)),
                      "mean": float(values.mean()), "max": int(values.max())},
        "duplicate_rows": duplicate_rows(parts),
        **inspect_images(entries),
    }
