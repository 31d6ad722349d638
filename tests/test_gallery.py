"""Top losses: the rows with the highest cross-entropy, highest first."""
import numpy as np

from fastleaf.report.gallery import top_losses


def test_top_losses_are_the_least_believed_true_labels():
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.05, 0.95]], dtype=np.float32)
    labels = np.array([0, 0, 1, 1])
    rows, losses = top_losses(probs, labels, 3)
    assert rows.tolist() == [1, 2, 0]
    assert np.allclose(losses, -np.log([0.2, 0.4, 0.9]))
    assert top_losses(probs, labels, 10)[0].shape == (4,)
