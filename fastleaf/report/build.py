"""The paper's Results section from real run folders: curves, a comparison table, mistakes.

    fastleaf report runs/cnn runs/resnet18 --out report/
    from fastleaf.report.build import build_report
    paths = build_report(["runs/cnn", "runs/resnet18"], "report/")   # name -> written file

Writes ``val_loss.png``, ``acc.png``, ``kappa.png``, ``train_loss.png``, ``comparison.csv``,
``class_distribution.png``, ``confused_pairs_<run>.png``, ``worst_classes_<run>.png``,
``report.html`` (self-contained) and ``report.md``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data.table import DataError
from ..train.metrics import classification_metrics
from ..utils.atomic import write_text_atomic, writing
from ..utils.console import console
from ..utils.csv_rows import write_rows
from ..viz.charts import curve_chart, distribution_chart, pairs_chart, worst_chart
from ..viz.confusion import (confused_pairs, confusion, run_table, validation_predictions,
                             worst_classes)
from ..viz.render import Section, html_page, markdown_page
from ..viz.runs import TABLE_COLUMNS, Run, comparison_rows, read_runs, shared_metric
from .gallery import gallery_sections

CURVES = (("val_loss", "validation loss"), ("acc", "validation accuracy"),
          ("kappa", "validation Cohen kappa"), ("train_loss", "training loss"))
PAIR_COLUMNS = ("true", "pred", "count", "share")
WORST_COLUMNS = ("class", "support", "correct", "acc")


def safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def class_distribution(run: Run, out_dir: Path, required: bool) -> tuple[Section, dict]:
    """Per-class counts of the run's train.csv (the paper's Fig. 5)."""
    try:
        table = run_table(run)
    except (DataError, FileNotFoundError) as err:
        if required:
            raise DataError(f"{err} (the data of {run.path / 'config.yaml'}; the confusion "
                            f"analysis needs it, --no-confusion skips it)") from None
        return Section("Class distribution", f"skipped: the data is not readable ({err})"), {}
    counts = np.bincount(table.all_train.labels, minlength=table.num_classes)
    path = distribution_chart(dict(zip(table.classes, counts.tolist())),
                              out_dir / "class_distribution.png",
                              title=f"{table.layout.train_csv}: images per class")
    text = (f"{len(table.all_train)} training images in {table.num_classes} classes "
            f"({len(table.train)} train / {len(table.val)} validation in this run's split).")
    return Section("Class distribution", text, images=[path]), {"class_distribution": path}


def mistakes(run: Run, out_dir: Path, top_pairs: int, worst: int, device: str,
             workers: int) -> tuple[list[Section], dict]:
    """Confusion of ``run``'s best checkpoint on its validation split: pairs and worst classes."""
    # the data folder of the run's config.yaml, where a moved run's data is pointed
    y_true, y_pred, classes = validation_predictions(run, device, workers, run.config.data)
    cm = confusion(y_true, y_pred, len(classes))
    pairs = confused_pairs(cm, classes, top_pairs)
    bad = worst_classes(cm, classes, worst)
    tag = safe_name(run.name)
    pair_png = pairs_chart(pairs, out_dir / f"confused_pairs_{tag}.png",
                           f"{run.name}: most confused pairs (true -> predicted)")
    worst_png = worst_chart(bad, out_dir / f"worst_classes_{tag}.png",
                            f"{run.name}: the {len(bad)} classes with the lowest accuracy")
    again = classification_metrics(y_true, y_pred)
    text = (f"{run.name} ({run.model}), best.pt on its {len(y_true)} validation images: "
            f"acc {again['acc']:.4f} (metrics.csv best row: {run.best['acc']:.4f}), "
            f"{int(cm.sum() - np.trace(cm))} mistakes. Most confused pairs, then the worst "
            f"classes.")
    sections = [Section(f"Mistakes of {run.name}", text, PAIR_COLUMNS, pairs,
                        [pair_png, worst_png]),
                Section(f"Worst classes of {run.name}", "", WORST_COLUMNS, bad)]
    return sections, {f"confused_pairs_{tag}": pair_png, f"worst_classes_{tag}": worst_png}


def build_report(run_dirs, out_dir, *, confusion: bool = True, confusion_all: bool = False,
                 top_pairs: int = 10, worst: int = 15, device: str = "auto",
                 workers: int = 0) -> dict[str, Path]:
    """Write the report for ``run_dirs`` into ``out_dir``.

    Args:
        run_dirs: run folders (metrics.csv, config.yaml, classes.json, best.pt).
        out_dir: folder for the PNGs, ``comparison.csv``, ``report.html`` and ``report.md``.
        confusion: re-run best.pt over the validation split (needs the data) for the
            confused pairs and worst classes.
        confusion_all: do that for every run, not only the best one (by the runs' common
            ``eval_metric``, else ``sum``).
        top_pairs, worst: how many confused pairs and worst classes to chart.
        device, workers: where the validation predictions run, and loader workers.

    Returns:
        Written files by name (``val_loss``, ``acc``, ..., ``report_html``, ``report_md``).
    """
    runs = read_runs(run_dirs)
    out_dir = Path(out_dir)
    with writing(out_dir):
        out_dir.mkdir(parents=True, exist_ok=True)
    table = comparison_rows(runs)
    written = {"comparison_csv": out_dir / "comparison.csv"}
    write_rows(written["comparison_csv"], TABLE_COLUMNS, table)
    sections = [Section("Comparison", "Each run's best epoch (the one best.pt holds: the "
                        "highest of the run's --eval-metric); img_per_s is training throughput.",
                        TABLE_COLUMNS, table)]
    curves = [curve_chart(runs, key, label, out_dir / f"{key}.png") for key, label in CURVES]
    written.update({key: path for (key, _), path in zip(CURVES, curves)})
    sections.append(Section("Training curves", images=curves))
    dist, paths = class_distribution(runs[0], out_dir, required=confusion)
    sections.append(dist)
    written.update(paths)
    if confusion:
        metric = shared_metric(runs)
        chosen = runs if confusion_all else [max(runs, key=lambda r: r.best[metric])]
        for run in chosen:
            console.print(f"predicting {run.name}'s validation split for the confusion matrix")
            parts, paths = mistakes(run, out_dir, top_pairs, worst, device, workers)
            sections += parts
            written.update(paths)
            parts, paths = gallery_sections(run, out_dir, device=device, workers=workers,
                                            top_pairs=top_pairs, tag=safe_name(run.name))
            sections += parts
            written.update(paths)
    title = "fastleaf report: " + ", ".join(r.name for r in runs)
    written["report_html"] = out_dir / "report.html"
    written["report_md"] = out_dir / "report.md"
    write_text_atomic(written["report_html"], html_page(title, sections))
    write_text_atomic(written["report_md"], markdown_page(title, sections, out_dir))
    return written
