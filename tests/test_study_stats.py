"""Bootstrap intervals and exact McNemar tests against scipy / scikit-learn on built cases."""
import warnings

import numpy as np
import pytest
from scipy.stats import bootstrap
from sklearn.metrics import cohen_kappa_score, f1_score

from fastleaf.study.stats import batch_metrics, mcnemar, metric_interval, metric_intervals
from fastleaf.train.metrics import classification_metrics


def predictions(n, classes=12, right=0.7, seed=0):
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, classes, n)
    wrong = rng.integers(0, classes, n)
    return y_true, np.where(rng.random(n) < right, y_true, wrong)


@pytest.mark.parametrize("case", ["random", "missing classes", "one class"])
def test_batch_metrics_are_scikit_learns(case):
    y_true, y_pred = predictions(300)
    if case == "missing classes":        # classes 10 and 11 never appear; 9 only predicted
        y_true, y_pred = y_true % 9, y_pred % 10
    if case == "one class":              # kappa undefined: counted as 0, as in training
        y_true, y_pred = np.zeros(20, int), np.zeros(20, int)
    expected = classification_metrics(y_true, y_pred)
    got = batch_metrics(np.stack([y_true, y_true]), np.stack([y_pred, y_pred]), 12)
    for name, value in expected.items():
        assert got[name].shape == (2,)
        assert got[name] == pytest.approx([value, value], abs=1e-12)


@pytest.mark.parametrize("metric,score", [
    ("kappa", cohen_kappa_score),
    ("f1_macro", lambda t, p: f1_score(t, p, average="macro", zero_division=0))])
def test_interval_is_scipys_bootstrap_of_the_scikit_learn_metric(metric, score):
    y_true, y_pred = predictions(120)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        direct = bootstrap((y_true, y_pred), score, paired=True, vectorized=False,
                           n_resamples=150, batch=50, method="BCa",
                           random_state=np.random.default_rng(3)).confidence_interval
    ours = metric_interval(y_true, y_pred, metric, 12, resamples=150, seed=3)
    assert ours == pytest.approx((direct.low, direct.high), abs=1e-9)


def test_intervals_hold_the_estimate_and_shrink_with_more_images():
    y_true, y_pred = predictions(150)
    small = metric_intervals(y_true, y_pred, 12, resamples=400)
    big = metric_intervals(np.tile(y_true, 8), np.tile(y_pred, 8), 12, resamples=400)
    point = classification_metrics(y_true, y_pred)
    for name, (low, high) in small.items():
        assert low <= point[name] <= high
        assert low < high
        assert big[name][1] - big[name][0] < 0.6 * (high - low)


def test_interval_of_a_perfect_model_is_its_score():
    y = np.arange(40) % 4
    assert metric_interval(y, y, "acc", 4, resamples=100) == (1.0, 1.0)


def test_exact_mcnemar_on_known_discordant_counts():
    # 20 images both get right, 10 only A, 2 only B, 8 both wrong
    y_true = np.zeros(40, int)
    a = np.r_[np.zeros(20), np.zeros(10), np.ones(2), np.ones(8)].astype(int)
    b = np.r_[np.zeros(20), np.ones(10), np.zeros(2), np.ones(8)].astype(int)
    test = mcnemar(y_true, a, b, "A", "B")
    assert (test.only_a, test.only_b) == (10, 2)
    # two-sided exact binomial: 2 * P(X <= 2), X ~ Bin(12, 1/2) = 2 * (1 + 12 + 66) / 4096
    assert test.p_value == pytest.approx(158 / 4096, rel=1e-12)
    assert test.verdict() == "holds"
    assert mcnemar(y_true, b, a, "B", "A").verdict() == "reversed"
    assert test.verdict(alpha=0.01) == "not distinguishable"


def test_mcnemar_without_discordant_pairs_finds_no_difference():
    y = np.arange(10) % 3
    test = mcnemar(y, y, y)
    assert (test.only_a, test.only_b, test.p_value) == (0, 0, 1.0)
    assert test.verdict() == "not distinguishable"
    with pytest.raises(ValueError):
        mcnemar(y, y, y[:5])
