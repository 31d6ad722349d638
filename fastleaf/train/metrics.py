"""The paper's validation metrics: accuracy, F1-macro, Cohen's kappa and their sum (scikit-learn)."""
from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, cohen_kappa_score, f1_score


def classification_metrics(y_true, y_pred) -> dict[str, float]:
    """Each of :data:`fastleaf.vocab.METRICS` for class ids ``y_true`` against ``y_pred``."""
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if len(y_true) == 0:
        raise ValueError("no samples to score")
    acc = float(accuracy_score(y_true, y_pred))
    f1 = float(f1_score(y_true, y_pred, average="macro", zero_division=0))
    # kappa is undefined (nan) when only one class is present in both: count it as agreement 0
    kappa = cohen_kappa_score(y_true, y_pred)
    kappa = 0.0 if np.isnan(kappa) else float(kappa)
    return {"acc": acc, "f1_macro": f1, "kappa": kappa, "sum": acc + f1 + kappa}
