"""The study's tables: the paper's Table 3 with intervals, the pairwise tests, the claims.

Inputs are plain: each model's predictions on the one validation split every run shares.
"""
from __future__ import annotations

from itertools import combinations

import numpy as np

from ..train.metrics import classification_metrics
from ..vocab import METRICS
from .stats import ALPHA, McNemar, mcnemar, metric_intervals

# the paper's Table 3 on Classify Leaves (acc, F1-macro, kappa); two models only in words
PAPER = {"cnn": (0.846, 0.840, 0.845), "vgg16": (0.826, 0.822, 0.825)}
PAPER_WORDS = {"resnet18": "the best (no figures given)",
               "deit_tiny": "below the CNN (no figures given)"}
# the paper's ranking: ResNet18 > CNN > VGG16, and the CNN above the frozen DeiT-tiny
CLAIMS = (("resnet18", "cnn"), ("cnn", "vgg16"), ("resnet18", "vgg16"), ("cnn", "deit_tiny"))
# Classify Leaves as the paper used it: its class count and train.csv / test.csv rows
CLASSIFY_LEAVES = (176, 18353, 8800)
NAMES = {"cnn": "CNN", "vgg16": "VGG16", "resnet18": "ResNet18", "deit_tiny": "DeiT-tiny"}
TABLE3 = ("model", "epochs", "batch_size", "lr_schedule", "best_epoch", *METRICS)
PAIRS = ("pair", "only_first_right", "only_second_right", "p_value", "at_0.05")


def is_classify_leaves(classes: int, train_rows: int, test_rows: int) -> bool:
    return (classes, train_rows, test_rows) == CLASSIFY_LEAVES


def with_interval(value: float, interval: tuple[float, float]) -> str:
    return f"{value:.3f} [{interval[0]:.3f}, {interval[1]:.3f}]"


def schedule_text(config) -> str:
    """``Adam 3e-4, plateau x0.5 after 5`` from a run's config."""
    text = f"{config.optimizer.capitalize()} {config.lr:g}"
    if config.scheduler == "plateau":
        return f"{text}, plateau x{config.plateau_factor:g} after {config.plateau_patience}"
    return f"{text}, {config.scheduler}"


def table3_rows(runs: list, y_true: np.ndarray, preds: dict, num_classes: int, *,
                paper: bool, resamples: int, seed: int = 0) -> list[dict]:
    """One row per run (viz ``Run``): settings, then each metric with its 95 % interval
    on the validation images (the best.pt predictions in ``preds[run.model]``)."""
    rows = []
    for run in runs:
        pred = preds[run.model]
        point = classification_metrics(y_true, pred)
        iv = metric_intervals(y_true, pred, num_classes, resamples=resamples, seed=seed)
        row = {"model": NAMES.get(run.model, run.model),
               "epochs": max(r["epoch"] for r in run.rows),
               "batch_size": run.config.batch_size, "lr_schedule": schedule_text(run.config),
               "best_epoch": run.best["epoch"],
               **{m: with_interval(point[m], iv[m]) for m in point}}
        if paper:
            row["paper (acc / F1 / kappa)"] = paper_text(run.model)
        rows.append(row)
    return rows


def paper_text(model: str) -> str:
    if model in PAPER:
        return " / ".join(f"{v:.3f}" for v in PAPER[model])
    return PAPER_WORDS.get(model, "not in the paper")


def pairwise(y_true: np.ndarray, preds: dict) -> list[McNemar]:
    """An exact McNemar test for every two models, in the order given."""
    return [mcnemar(y_true, preds[a], preds[b], a, b) for a, b in combinations(preds, 2)]


def pair_rows(tests: list[McNemar], alpha: float = ALPHA) -> list[dict]:
    rows = []
    for t in tests:
        if t.p_value >= alpha:
            said = "no difference shown"
        else:
            winner = t.a if t.only_a > t.only_b else t.b
            said = f"{NAMES.get(winner, winner)} better"
        rows.append({"pair": f"{NAMES.get(t.a, t.a)} vs {NAMES.get(t.b, t.b)}",
                     "only_first_right": t.only_a, "only_second_right": t.only_b,
                     "p_value": f"{t.p_value:.3g}", "at_0.05": said})
    return rows


def claim_sentences(tests: list[McNemar], alpha: float = ALPHA) -> list[str]:
    """One sentence per claim of the paper's ranking whose two models were both trained."""
    found = {(t.a, t.b): t for t in tests}
    sentences = []
    for better, worse in CLAIMS:
        test = found.get((better, worse))
        if test is None and (worse, better) in found:
            flipped = found[(worse, better)]
            test = McNemar(better, worse, flipped.only_b, flipped.only_a, flipped.p_value)
        if test is None:
            continue
        verdict = test.verdict(alpha)
        sentences.append(
            f"The paper's {NAMES[better]} > {NAMES[worse]}: {verdict} on this data "
            f"(exact McNemar, {test.only_a} images only {NAMES[better]} gets right, "
            f"{test.only_b} only {NAMES[worse]}, p = {test.p_value:.3g}).")
    return sentences
