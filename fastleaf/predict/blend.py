"""Blend k-fold runs: member weights (and temperatures) searched on out-of-fold predictions.

    fastleaf blend runs/k5-r50 runs/k5-seresnext --out blend.json [--temperature]
    fastleaf tta-predict --data DIR --blend blend.json --out submission.csv

Each member is a k-fold run folder with ``oof.csv`` / ``oof_probs.npy`` (``train --folds K``).
The search is coordinate ascent over each member's weight on a grid, maximising the chosen
out-of-fold metric (accuracy by default, as Kaggle scores), ties broken by the lower log-loss;
a metric of argmax predictions is a step function, which gradient optimisers cannot climb.
Against overfitting the rows are halved (stratified): weights searched on one half are scored
on the other, both ways round; unless that held-back score beats equal weights', equal
weights are kept.  An optional temperature per member is fitted by log-loss (one number each).
At test time every fold model of a member predicts, the folds are averaged within the member,
the member's temperature is applied, and the members are weighted.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..data.table import DataError
from ..errors import MissingFileError, UsageError
from ..train.metrics import classification_metrics
from ..utils.atomic import write_text_atomic
from ..vocab import METRICS
from .oof import OutOfFold, read_out_of_fold

FORMAT = 1
GRID = np.linspace(0.0, 1.0, 21)
EPS = 1e-7


@dataclass
class BlendResult:
    runs: list[Path]
    weights: np.ndarray              # (M,) sum to 1
    temperatures: np.ndarray         # (M,) 1 = untouched
    member_cv: list[dict]            # each member's own out-of-fold metrics
    cv: dict                         # the blend's out-of-fold metrics
    equal_cv: dict                   # equal weights (temperatures applied)
    held_back: dict                  # {"searched": .., "equal": .., "kept": "searched"|"equal"}
    metric: str
    rows: int


def tempered(probs: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log p / T): T > 1 flattens a member's probabilities, T < 1 sharpens them."""
    if temperature == 1.0:
        return probs
    logits = np.log(np.clip(probs, EPS, 1.0)) / temperature
    logits -= logits.max(1, keepdims=True)
    out = np.exp(logits)
    return out / out.sum(1, keepdims=True)


def log_loss(probs: np.ndarray, labels: np.ndarray) -> float:
    return float(-np.log(np.clip(probs[np.arange(len(labels)), labels], EPS, 1.0)).mean())


def fit_temperature(probs: np.ndarray, labels: np.ndarray) -> float:
    """The temperature with the lowest out-of-fold log-loss (scipy, bounded on log T)."""
    from scipy.optimize import minimize_scalar

    found = minimize_scalar(lambda t: log_loss(tempered(probs, float(np.exp(t))), labels),
                            bounds=(np.log(0.05), np.log(20.0)), method="bounded")
    return float(np.exp(found.x))


def mix(probs: Sequence[np.ndarray], weights: np.ndarray) -> np.ndarray:
    weights = np.asarray(weights, dtype=np.float64)
    return np.einsum("m,mnc->nc", weights / weights.sum(), np.stack(probs))


def objective(probs: np.ndarray, labels: np.ndarray, metric: str) -> tuple[float, float]:
    """What the search maximises: (metric, -log-loss), compared in that order."""
    value = classification_metrics(labels, probs.argmax(1))[metric]
    return round(value, 12), -log_loss(probs, labels)


def search_weights(probs: Sequence[np.ndarray], labels: np.ndarray, metric: str = "acc",
                   rounds: int = 10) -> np.ndarray:
    """Coordinate ascent from equal weights; each member's weight tries every grid value."""
    weights = np.ones(len(probs))
    best = objective(mix(probs, weights), labels, metric)
    for _ in range(rounds):
        improved = False
        for m in range(len(probs)):
            for value in GRID:
                trial = weights.copy()
                trial[m] = value
                if trial.sum() <= 0:
                    continue
                score = objective(mix(probs, trial), labels, metric)
                if score > best:
                    best, weights, improved = score, trial, True
        if not improved:
            break
    return weights / weights.sum()


def halves(labels: np.ndarray, seed: int = 0) -> list[np.ndarray]:
    """Two disjoint, class-stratified halves of the rows (plain halves for singleton classes)."""
    from sklearn.model_selection import KFold, StratifiedKFold

    counts = np.bincount(labels)
    stratify = counts[counts > 0].min() >= 2
    splitter = (StratifiedKFold if stratify else KFold)(2, shuffle=True, random_state=seed)
    return [val for _, val in splitter.split(np.zeros(len(labels)), labels)]


def held_back_check(probs, labels, metric: str, temperature: bool) -> dict:
    """Search on one half and score on the other, both ways: searched vs equal weights."""
    scored = {"searched": [], "equal": []}
    for half in halves(labels):
        fit = np.setdiff1d(np.arange(len(labels)), half)
        temps = [fit_temperature(p[fit], labels[fit]) if temperature else 1.0 for p in probs]
        fit_p = [tempered(p[fit], t) for p, t in zip(probs, temps)]
        test_p = [tempered(p[half], t) for p, t in zip(probs, temps)]
        weights = search_weights(fit_p, labels[fit], metric)
        for name, w in (("searched", weights), ("equal", np.ones(len(probs)))):
            pred = mix(test_p, w).argmax(1)
            scored[name].append((labels[half], pred))
    result = {}
    for name, parts in scored.items():
        y = np.concatenate([t for t, _ in parts])
        p = np.concatenate([q for _, q in parts])
        result[name] = classification_metrics(y, p)[metric]
    # a tie is no evidence for the searched weights: the simpler blend stays
    result["kept"] = "searched" if result["searched"] > result["equal"] else "equal"
    return result


def check_aligned(runs: Sequence[Path], oofs: Sequence[OutOfFold]) -> None:
    """Members must predict the same rows, in the same order, over the same classes."""
    first = oofs[0]
    for run, other in zip(runs[1:], oofs[1:]):
        if other.classes != first.classes:
            raise DataError(f"{run}: trained on another class list than {runs[0]}")
        if len(other.frame) != len(first.frame) or \
                (other.frame["image"].to_numpy() != first.frame["image"].to_numpy()).any() or \
                (other.labels != first.labels).any():
            raise DataError(f"{run}: its oof.csv rows differ from {runs[0]}'s; blend members "
                            f"must be k-fold runs on the same train.csv")


def blend_runs(runs: Sequence[str | Path], metric: str = "acc",
               temperature: bool = False) -> BlendResult:
    """Search member weights (and temperatures) on the runs' out-of-fold predictions.

    Args:
        runs: k-fold run folders holding ``oof.csv`` and ``oof_probs.npy``.
        metric: the out-of-fold metric to maximise (acc, f1_macro, kappa or sum).
        temperature: also fit one temperature per member (by log-loss).
    """
    if metric not in METRICS:
        raise UsageError(f"--metric {metric!r}: use one of {', '.join(METRICS)}")
    runs = [Path(r) for r in runs]
    if len(set(r.resolve() for r in runs)) != len(runs):
        raise UsageError("a run is named twice; each blend member is a different k-fold run")
    oofs = [read_out_of_fold(r) for r in runs]
    check_aligned(runs, oofs)
    labels = oofs[0].labels
    temps = np.array([fit_temperature(o.probs, labels) if temperature else 1.0 for o in oofs])
    probs = [tempered(o.probs, t) for o, t in zip(oofs, temps)]
    held = held_back_check([o.probs for o in oofs], labels, metric, temperature) \
        if len(runs) > 1 else {"searched": float("nan"), "equal": float("nan"), "kept": "equal"}
    weights = search_weights(probs, labels, metric) if held["kept"] == "searched" \
        else np.full(len(runs), 1.0 / len(runs))
    score = lambda w: classification_metrics(labels, mix(probs, w).argmax(1))  # noqa: E731
    return BlendResult(runs, weights, temps, [o.metrics for o in oofs], score(weights),
                       score(np.ones(len(runs))), held, metric, len(labels))


def write_blend(path: str | Path, result: BlendResult) -> Path:
    """``blend.json``: members (paths relative to the file), weights, temperatures, scores."""
    path = Path(path)
    base = path.resolve().parent
    members = [{"run": os.path.relpath(run.resolve(), base), "weight": float(w),
                "temperature": float(t), "cv": cv}
               for run, w, t, cv in zip(result.runs, result.weights, result.temperatures,
                                        result.member_cv)]
    spec = {"format": FORMAT, "metric": result.metric, "rows": result.rows,
            "members": members, "cv": result.cv, "equal_weights_cv": result.equal_cv,
            "held_back": result.held_back}
    write_text_atomic(path, json.dumps(spec, indent=1) + "\n")
    return path


def read_blend(path: str | Path) -> list[dict]:
    """The members of a blend file, each ``{"run": Path, "weight", "temperature"}``."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"blend file not found: {path}")
    try:
        spec = json.loads(path.read_text())
        members = [{"run": (path.resolve().parent / m["run"]).resolve(),
                    "weight": float(m["weight"]), "temperature": float(m["temperature"])}
                   for m in spec["members"]]
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        raise DataError(f"{path}: not a fastleaf blend file ({type(err).__name__}: {err})") \
            from None
    # NaN passes every comparison below, and the file may have been edited by hand
    finite = all(np.isfinite([m["weight"], m["temperature"]]).all() for m in members)
    if not members or not finite or any(m["weight"] < 0 or m["temperature"] <= 0
                                        for m in members) \
            or sum(m["weight"] for m in members) <= 0:
        raise DataError(f"{path}: needs members with finite weights >= 0 (positive sum) and "
                        f"finite temperatures > 0")
    return members


def blend_ensemble(blend_file: str | Path, samples, settings):
    """Predict ``samples`` with every fold model of every blend member.

    Folds are averaged within a member (as their out-of-fold predictions were made one fold at
    a time, their mean is the member's test prediction), then the member's temperature, then
    the members' weights.  Returns ``(checkpoints, EnsembleOutput)``.
    """
    import torch

    from .ensemble import EnsembleOutput, check_classes, ensemble_probs, load_members

    spec = read_blend(blend_file)
    checkpoints, outputs = [], []
    for member in spec:
        folds = load_members([member["run"]])
        check_classes(([checkpoints[0]] if checkpoints else []) + folds)
        checkpoints += folds
        outputs.append(ensemble_probs(folds, samples, settings)[settings.tta])
    weights = np.array([m["weight"] for m in spec])
    probs = mix([tempered(o.probs.numpy().astype(np.float64), m["temperature"])
                 for o, m in zip(outputs, spec)], weights)
    first = outputs[0]
    return checkpoints, EnsembleOutput(
        torch.from_numpy(probs.astype(np.float32)), first.labels,
        sum(o.seconds for o in outputs), first.views, len(checkpoints),
        [r for o in outputs for r in o.per_member], [h for o in outputs for h in o.how])
