"""Comparisons that hold up: models scored on the same validation images.

* a 95 % bootstrap interval for each metric: ``scipy.stats.bootstrap`` resamples the
  (true, predicted) pairs together and recomputes the metric on every resample;
* the exact McNemar test between two models: of the images exactly one of the two gets right,
  is the split b : c compatible with 1 : 1?  (``scipy.stats.binomtest`` on the discordant
  pairs, which is the exact form of McNemar's test);
* each of the paper's ranking claims judged ``holds``, ``reversed`` or ``not distinguishable``.

    iv = metric_intervals(y_true, y_pred, num_classes=176)     # {"acc": (lo, hi), ...}
    test = mcnemar(y_true, pred_cnn, pred_vgg, "cnn", "vgg16")  # test.p_value, test.verdict()
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy.stats import binomtest, bootstrap

from ..vocab import METRICS

ALPHA = 0.05
LEVEL = 0.95
RESAMPLES = 2000
BATCH = 50                # resamples per vectorised call: (BATCH, classes^2) counts in memory


def batch_metrics(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> dict:
    """acc, F1-macro, kappa and sum of each row of ``(..., n)`` label arrays.

    The same definitions as :func:`fastleaf.train.metrics.classification_metrics`
    (scikit-learn's): F1 averaged over the classes present in either array, kappa 0 where
    scikit-learn's is undefined.  Counted from confusion matrices, so thousands of
    resamples cost one vectorised pass instead of thousands of scikit-learn calls.
    """
    t = np.asarray(y_true, dtype=np.int64)
    p = np.asarray(y_pred, dtype=np.int64)
    lead, n, k = t.shape[:-1], t.shape[-1], num_classes
    t, p = t.reshape(-1, n), p.reshape(-1, n)
    rows = np.arange(len(t))[:, None] * k * k
    cm = np.bincount((rows + t * k + p).ravel(), minlength=len(t) * k * k).reshape(-1, k, k)
    tp = np.diagonal(cm, axis1=1, axis2=2).astype(np.float64)
    truth, said = cm.sum(2).astype(np.float64), cm.sum(1).astype(np.float64)   # (B, k)
    present = (truth + said) > 0
    f1 = np.where(present, 2 * tp / np.maximum(truth + said, 1), 0.0)
    f1 = f1.sum(1) / np.maximum(present.sum(1), 1)
    acc = tp.sum(1) / n
    chance = (truth * said).sum(1) / n ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        kappa = np.where(chance < 1, (acc - chance) / (1 - chance), 0.0)
    out = {"acc": acc, "f1_macro": f1, "kappa": kappa, "sum": acc + f1 + kappa}
    return {name: value.reshape(lead) for name, value in out.items()}


def metric_interval(y_true, y_pred, metric: str, num_classes: int, *,
                    resamples: int = RESAMPLES, level: float = LEVEL,
                    seed: int = 0) -> tuple[float, float]:
    """The ``level`` bootstrap interval of ``metric`` (BCa; percentile where BCa is
    undefined, e.g. a model right on every image)."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}: {', '.join(METRICS)}")

    def statistic(t, p, axis=-1):
        return batch_metrics(np.moveaxis(t, axis, -1), np.moveaxis(p, axis, -1),
                             num_classes)[metric]

    data = (np.asarray(y_true), np.asarray(y_pred))
    for method in ("BCa", "percentile"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")      # a degenerate BCa says so with NaN
            result = bootstrap(data, statistic, paired=True, vectorized=True,
                               n_resamples=resamples, batch=BATCH, confidence_level=level,
                               method=method, random_state=np.random.default_rng(seed))
        low, high = result.confidence_interval
        if np.isfinite(low) and np.isfinite(high):
            return float(low), float(high)
    point = float(statistic(data[0][None], data[1][None])[0])
    return point, point                          # every resample gives the same value


def metric_intervals(y_true, y_pred, num_classes: int, **kwargs) -> dict:
    """``{metric: (low, high)}`` for acc, F1-macro, kappa and sum."""
    return {m: metric_interval(y_true, y_pred, m, num_classes, **kwargs) for m in METRICS}


@dataclass(frozen=True)
class McNemar:
    a: str
    b: str
    only_a: int          # images ``a`` gets right and ``b`` wrong
    only_b: int
    p_value: float

    def verdict(self, alpha: float = ALPHA) -> str:
        """For the claim "a beats b": holds, reversed, or not distinguishable."""
        if self.p_value >= alpha:
            return "not distinguishable"
        return "holds" if self.only_a > self.only_b else "reversed"


def mcnemar(y_true, pred_a, pred_b, a: str = "a", b: str = "b") -> McNemar:
    """Exact McNemar test of two models' predictions on the same images (two-sided)."""
    y_true, pred_a, pred_b = (np.asarray(x) for x in (y_true, pred_a, pred_b))
    if not len(y_true) == len(pred_a) == len(pred_b):
        raise ValueError("McNemar needs both models' predictions on the same images")
    right_a, right_b = pred_a == y_true, pred_b == y_true
    only_a, only_b = int(np.sum(right_a & ~right_b)), int(np.sum(~right_a & right_b))
    discordant = only_a + only_b
    # no image tells the two apart: no evidence either way
    p = binomtest(only_a, discordant, 0.5).pvalue if discordant else 1.0
    return McNemar(a, b, only_a, only_b, float(p))
