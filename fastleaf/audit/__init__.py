"""Label audit: likely wrong labels from out-of-fold probabilities, near-copies whose labels
disagree, test images that copy training images; and the ``train --exclude/--relabel`` side."""
