"""The end-of-run summary table."""
from __future__ import annotations

from rich.table import Table

from ..utils.console import console
from ..vocab import METRICS


def print_summary(result) -> None:
    table = Table(title=f"run {result.run_dir}", show_edge=False)
    for column in ("", "epoch", "val_loss", *METRICS, "img/s"):
        table.add_column(column, justify="right")
    for name, row in (("best", result.best), ("last", result.last)):
        if row:
            table.add_row(name, str(row["epoch"]), f"{row['val_loss']:.4f}",
                          *(f"{row[m]:.4f}" for m in METRICS), f"{row['img_per_s']:.1f}")
    console.print(table)
    console.print(f"best checkpoint: {result.run_dir / 'best.pt'}")
