"""``audit.html``: each finding's image beside the evidence, highest score first.

A label issue shows the image, then a training image of the suggested species (one its
label is not doubted on); a near-copy shows its twin.  Thumbnails are inlined JPEGs, so the
page is one self-contained file.
"""
from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import pandas as pd

from ..data.imageio import ImageDecodeError, decode_rgb
from ..data.table import read_frame, resolve_layout

THUMB = 160
STYLE = ("body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
         "td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top}"
         "img{width:%dpx;height:%dpx;object-fit:contain;background:#111}" % (THUMB, THUMB))


def thumbnail(path: Path) -> str:
    """An inline JPEG of the file, or a note that it cannot be read."""
    from PIL import Image

    try:
        pixels = decode_rgb(path).permute(1, 2, 0).numpy()
    except (ImageDecodeError, OSError):
        return "<i>unreadable</i>"
    img = Image.fromarray(pixels)
    img.thumbnail((THUMB, THUMB))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=80)
    return f"<img src='data:image/jpeg;base64,{base64.b64encode(buf.getvalue()).decode()}'>"


def class_examples(train: pd.DataFrame, doubted: set[str]) -> dict[str, str]:
    """One image per label, preferring one the audit does not doubt."""
    examples: dict[str, str] = {}
    for image, label in zip(train["image"], train["label"]):
        if image not in doubted or label not in examples:
            if label not in examples or examples[label] in doubted:
                examples[label] = image
    return examples


def finding_row(f, root: Path, examples: dict[str, str]) -> str:
    other = f.other_image or examples.get(f.suggested_label, "")
    caption = "twin" if f.other_image else "a suggested-species image"
    cells = [thumbnail(root / f.image), thumbnail(root / other) if other else "",
             html.escape(f"{f.image} ({f.csv} line {f.line})"),
             html.escape(f.given_label or "-"), html.escape(f.suggested_label or "-"),
             f"{float(f.score):.3f}", html.escape(f"{f.reason}; right: {caption}")]
    return "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


def audit_page(frame: pd.DataFrame, data_dir, title: str, limit: int = 300) -> str:
    """The HTML page of an audit frame (:func:`fastleaf.audit.find.audit`), the first
    ``limit`` findings of each part with thumbnails."""
    layout = resolve_layout(data_dir)
    train, _ = read_frame(layout.train_csv, ("image", "label"))
    examples = class_examples(train, set(frame["image"]))
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
             f"</title><style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>"]
    head = "".join(f"<th>{c}</th>" for c in ("image", "evidence", "file", "given",
                                             "suggested", "score", "reason"))
    for name, rows in (("Training labels", frame[frame["csv"] != "test.csv"]),
                       ("Test images copying training images", frame[frame["csv"] == "test.csv"])):
        shown = f", the first {limit} shown" if len(rows) > limit else ""
        parts.append(f"<h2>{name}: {len(rows)}{shown}</h2>")
        if len(rows):
            body = "".join(finding_row(f, layout.image_root, examples)
                           for f in rows.head(limit).itertuples(index=False))
            parts.append(f"<table><tr>{head}</tr>{body}</table>")
    return "".join(parts) + "</body></html>"
