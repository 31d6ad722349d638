import pytest

from fastleaf.train.metrics import classification_metrics


def test_metrics_equal_hand_computed_values():
    y_true = [0, 0, 1, 1, 2, 2]
    y_pred = [0, 1, 1, 1, 2, 0]
    m = classification_metrics(y_true, y_pred)
    assert m["acc"] == pytest.approx(4 / 6)
    # per class F1: class0 p=1/2 r=1/2 -> 0.5; class1 p=2/3 r=1 -> 0.8; class2 p=1 r=1/2 -> 2/3
    assert m["f1_macro"] == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    # kappa: po = 4/6; pe = sum(row_c * col_c) / 36 = (2*2 + 2*3 + 2*1) / 36 = 1/3
    assert m["kappa"] == pytest.approx((4 / 6 - 1 / 3) / (1 - 1 / 3))
    assert m["sum"] == pytest.approx(m["acc"] + m["f1_macro"] + m["kappa"])


def test_perfect_and_empty():
    assert classification_metrics([1, 2, 3], [1, 2, 3])["sum"] == pytest.approx(3.0)
    with pytest.raises(ValueError):
        classification_metrics([], [])
