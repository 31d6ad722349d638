"""The study's report: the paper's Table 3 with intervals, paired tests, the ranking claims
and the paper's figures, from the study's run folders (``R/report.html``, ``R/report.md``).

    fastleaf reproduce --data DIR --out R     # writes it at the end; or, for a finished study:
    from fastleaf.study.report import write_study_report
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from ..data.table import read_csv, resolve_layout
from ..errors import UsageError
from ..utils.atomic import write_text_atomic
from ..utils.console import console
from ..utils.eta import duration
from ..viz.charts import curve_chart
from ..viz.confusion import validation_predictions
from ..viz.render import Section, html_page, markdown_page
from ..viz.runs import read_runs
from .plan import Plan, StudyOptions
from .stats import ALPHA, RESAMPLES
from .tables import (PAIRS, TABLE3, claim_sentences, is_classify_leaves, pair_rows, pairwise,
                     table3_rows)

FIGURES = "figures"
CURVES = (("val_loss", "validation loss"), ("train_loss", "training loss"),
          ("acc", "validation accuracy"), ("kappa", "validation Cohen kappa"))


def shared_predictions(runs, device: str) -> tuple[np.ndarray, dict, int]:
    """(true ids, {model: predicted ids}, classes) of every run's best.pt on the validation
    split; refused unless every run was scored on the same images."""
    preds, y_true, classes = {}, None, None
    for run in runs:
        console.print(f"predicting {run.model}'s validation images with its best.pt")
        truth, pred, names = validation_predictions(run, device)
        if y_true is not None and (names != classes or not np.array_equal(truth, y_true)):
            raise UsageError(f"{run.path}: validated on other images than {runs[0].path}; "
                             f"paired tests need one split (same data, seed, val fraction)")
        y_true, classes, preds[run.model] = truth, names, pred
    return y_true, preds, len(classes)


def paper_data(data: str) -> bool:
    """Whether ``data`` is Classify Leaves as the paper used it (classes and row counts)."""
    layout = resolve_layout(data)
    train = read_csv(layout.train_csv, ("image", "label"))
    test_rows = len(read_csv(layout.test_csv, ("image",))) if layout.test_csv.is_file() else 0
    return is_classify_leaves(train["label"].nunique(), len(train), test_rows)


def example_image(data: str) -> tuple[Path, str]:
    """The first image of the most frequent class (the paper shows a maclura_pomifera leaf)."""
    layout = resolve_layout(data)
    frame = read_csv(layout.train_csv, ("image", "label"))
    label = Counter(frame["label"]).most_common(1)[0][0]
    return layout.image_root / frame.loc[frame["label"] == label, "image"].iloc[0], label


def figure_sections(runs, out: Path, data: str) -> list[Section]:
    """Curves side by side; the CNN's filters and feature maps; DeiT-tiny's attention."""
    from ..viz.feature_maps import write_feature_maps
    from ..viz.filters import write_filter_figures

    figures = out / FIGURES
    curves = [curve_chart(runs, key, label, figures / f"{key}.png") for key, label in CURVES]
    sections = [Section("Training curves", "One line per model; the star marks the epoch "
                        "best.pt holds.", images=curves)]
    by_model = {run.model: run for run in runs}
    image, label = example_image(data)
    convs = [m for m in ("cnn", "resnet18", "vgg16") if m in by_model]
    if convs:
        run = by_model[convs[0]]
        paths = write_filter_figures(run.path, figures / f"filters_{run.model}", channel=0)
        sections.append(Section(f"Filters of the {run.model}", "First-layer filters as RGB "
                                "tiles, then the first filter of the second convolution, one "
                                "grey tile per input channel.", images=paths))
        paths = write_feature_maps(run.path, image, figures / f"feature_maps_{run.model}")
        sections.append(Section(f"Feature maps of the {run.model}", f"One {label} image "
                                "(the most frequent class): the input, then the first "
                                "convolution's output and each layer after it through the "
                                "second convolution.", images=paths))
    if "deit_tiny" in by_model:
        paths = write_feature_maps(by_model["deit_tiny"].path, image, figures / "attention")
        sections.append(Section("DeiT-tiny attention rollout", f"The same {label} image and "
                                "where the class token looks (attention rollout).",
                                images=[p for p in paths if "attention" in p.name]))
    return sections


def budget_rows(plan: Plan, models) -> list[dict]:
    rows = []
    for model in models:
        est, act = plan.estimate_s.get(model), plan.actual_s.get(model)
        rows.append({"model": model, "estimated": duration(est) if est is not None else "-",
                     "took": duration(act) if act is not None else "-"})
    return rows


def write_study_report(out: str | Path, options: StudyOptions, plan: Plan, *,
                       resamples: int = RESAMPLES) -> Path:
    """Write ``report.html`` and ``report.md`` into the study folder; returns the HTML path."""
    out = Path(out)
    runs = read_runs([out / m for m in options.models])
    y_true, preds, num_classes = shared_predictions(runs, options.device)
    paper = paper_data(options.data)
    rows = table3_rows(runs, y_true, preds, num_classes, paper=paper, resamples=resamples,
                       seed=options.seed)
    columns = TABLE3 + (("paper (acc / F1 / kappa)",) if paper else ())
    subset = (f"a stratified subset of {plan.per_class} images per class" if plan.per_class
              else "every image")
    tests = pairwise(y_true, preds)
    notes = ""
    if "deit_tiny" in options.models and "deit_tiny" not in dict(options.weights):
        notes = (" DeiT-tiny's frozen backbone had random weights (no --weights "
                 "deit_tiny=FILE), not the paper's ImageNet ones.")
    sections = [
        Section("Table 3", f"{len(y_true)} validation images ({subset} of {options.data}). "
                f"Each metric of the epoch best.pt holds, with its 95 % bootstrap interval "
                f"({resamples} paired resamples of the validation images)."
                + ("" if paper else " The paper's figures are shown only for Classify Leaves "
                   "(176 classes, 18,353 / 8,800 rows).") + notes, columns, rows),
        Section("Paired tests", f"Exact McNemar test between every two models on the same "
                f"images: the images only one of the two gets right (alpha {ALPHA}).",
                PAIRS, pair_rows(tests)),
        Section("The paper's ranking", " ".join(claim_sentences(tests)) or
                "No pair of the paper's ranking was trained."),
        Section("Budget", "Estimated from timed steps before training, and the wall time "
                "each model took.", ("model", "estimated", "took"),
                budget_rows(plan, options.models)),
    ]
    sections += figure_sections(runs, out, plan.train_data or options.data)
    title = f"fastleaf reproduce: {', '.join(options.models)}"
    html, md = out / "report.html", out / "report.md"
    write_text_atomic(html, html_page(title, sections))
    write_text_atomic(md, markdown_page(title, sections, out))
    console.print(f"wrote {html} and {md}", soft_wrap=True)
    return html
