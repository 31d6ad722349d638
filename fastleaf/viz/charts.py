"""The report's charts: training curves, class counts, confused pairs, worst classes.

Each chart has a fixed figure size, so its PNG is ``FIGSIZE x plots.DPI`` pixels.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.ticker import MaxNLocator

from .plots import pyplot, save_figure
from .runs import Run

CURVE_SIZE = (8.0, 5.0)           # 800 x 500 px
DISTRIBUTION_SIZE = (10.0, 8.0)   # 1000 x 800 px
BAR_SIZE = (9.0, 6.0)             # 900 x 600 px


def curve_chart(runs: list[Run], key: str, label: str, path: str | Path) -> Path:
    """``key`` against epoch, one line per run, the best epoch of each marked."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=CURVE_SIZE)
    for run in runs:
        epochs = [r["epoch"] for r in run.rows if key in r]
        values = [r[key] for r in run.rows if key in r]
        line, = ax.plot(epochs, values, marker="o", markersize=3, label=f"{run.name} ({run.model})")
        best = run.best
        if key in best:
            ax.plot([best["epoch"]], [best[key]], marker="*", markersize=12, color=line.get_color())
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))     # epochs are whole numbers
    ax.set_xlabel("epoch")
    ax.set_ylabel(label)
    ax.set_title(f"{label} per epoch (star: best epoch by acc + F1 + kappa)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def distribution_chart(counts: dict[str, int], path: str | Path, head: int = 15,
                       title: str = "training images per class") -> Path:
    """All classes sorted by count (top), the ``head`` largest and smallest by name (bottom)."""
    plt = pyplot()
    names = sorted(counts, key=lambda c: (-counts[c], c))
    values = np.array([counts[c] for c in names])
    fig = plt.figure(figsize=DISTRIBUTION_SIZE)
    top = fig.add_subplot(2, 1, 1)
    top.bar(np.arange(len(values)), values, width=1.0, color="tab:green")
    top.set_xlabel(f"class rank (of {len(values)})")
    top.set_ylabel("images")
    top.set_title(f"{title}: max {values.max()}, median {np.median(values):g}, min {values.min()}")
    for col, (part, label) in enumerate(((names[:head], "head"), (names[-head:][::-1], "tail"))):
        ax = fig.add_subplot(2, 2, 3 + col)
        ax.barh(np.arange(len(part)), [counts[c] for c in part], color="tab:olive")
        ax.set_yticks(np.arange(len(part)), part, fontsize=7)
        ax.invert_yaxis()
        ax.set_title(f"{label}: {'most' if label == 'head' else 'fewest'} images", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)


def pairs_chart(pairs: list[dict], path: str | Path, title: str) -> Path:
    """Horizontal bars of the most frequent (true -> predicted) mistakes."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=BAR_SIZE)
    labels = [f"{p['true']} -> {p['pred']}" for p in pairs]
    ax.barh(np.arange(len(pairs)), [p["count"] for p in pairs], color="tab:red")
    ax.set_yticks(np.arange(len(pairs)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("validation images")
    ax.set_title(title if pairs else f"{title}: no mistakes")
    fig.tight_layout()
    return save_figure(fig, path)


def worst_chart(worst: list[dict], path: str | Path, title: str) -> Path:
    """Per-class validation accuracy of the worst classes, with correct/support labels."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=BAR_SIZE)
    y = np.arange(len(worst))
    ax.barh(y, [w["acc"] for w in worst], color="tab:blue")
    ax.set_yticks(y, [w["class"] for w in worst], fontsize=7)
    for i, w in enumerate(worst):
        ax.text(w["acc"] + 0.01, i, f"{w['correct']}/{w['support']}", va="center", fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.1)
    ax.set_xlabel("validation accuracy")
    ax.set_title(title)
    fig.tight_layout()
    return save_figure(fig, path)
