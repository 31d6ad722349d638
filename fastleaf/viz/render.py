"""Report pages from one list of sections: a self-contained HTML file and a Markdown file.

HTML embeds every PNG as a ``data:image/png;base64`` URI, so the one file can be mailed or
archived; Markdown links the PNGs next to it.
"""
from __future__ import annotations

import base64
import html
import os
from dataclasses import dataclass, field
from pathlib import Path

STYLE = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
         "table{border-collapse:collapse;font-size:13px;margin:1em 0}"
         "th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}"
         "th{background:#eee}td:first-child,th:first-child{text-align:left}"
         "img{max-width:100%;display:block;margin:1em 0}"
         # several figures of a section side by side, as many columns as the window holds
         ".grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(480px,1fr));"
         "gap:0 1em}.grid img{margin:0.5em 0}")


@dataclass
class Section:
    title: str
    text: str = ""
    columns: tuple[str, ...] = ()
    rows: list[dict] = field(default_factory=list)
    images: list[Path] = field(default_factory=list)


def cell(column: str, value) -> str:
    """One table value as text: learning rates in e-notation, speeds to 0.1, scores to 1e-4."""
    if isinstance(value, bool) or not isinstance(value, float):
        return str(value)
    if column == "lr":
        return f"{value:.2e}"
    if column.endswith("per_s"):
        return f"{value:.1f}"
    return f"{value:.4f}"


def data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def html_table(columns, rows) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(cell(c, r.get(c, '')))}</td>"
                                     for c in columns) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def html_page(title: str, sections: list[Section]) -> str:
    """A single HTML document with the images inlined (no external references)."""
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
             f"</title><style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>"]
    for s in sections:
        parts.append(f"<h2>{html.escape(s.title)}</h2>")
        if s.text:
            parts.append(f"<p>{html.escape(s.text)}</p>")
        if s.columns:
            parts.append(html_table(s.columns, s.rows))
        images = [f"<img alt='{html.escape(p.stem)}' src='{data_uri(p)}'>" for p in s.images]
        if len(images) > 1:
            images = ["<div class='grid'>", *images, "</div>"]
        parts += images
    parts.append("</body></html>\n")
    return "\n".join(parts)


def markdown_table(columns, rows) -> str:
    def esc(text: str) -> str:
        return text.replace("|", "\\|")

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(esc(cell(c, r.get(c, ""))) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def markdown_page(title: str, sections: list[Section], out_dir: Path) -> str:
    """Markdown with tables inline and images linked relative to ``out_dir``."""
    parts = [f"# {title}"]
    for s in sections:
        parts.append(f"## {s.title}")
        if s.text:
            parts.append(s.text)
        if s.columns:
            parts.append(markdown_table(s.columns, s.rows))
        parts += [f"![{p.stem}]({Path(os.path.relpath(p, out_dir)).as_posix()})" for p in s.images]
    return "\n\n".join(parts) + "\n"
