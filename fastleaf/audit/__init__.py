"""Label audit: likely wrong labels from out-of-fold probabilities, near-copies whose labels
disagree, test images that copy training images.  The ``train --exclude/--relabel`` side, which
reads an ``audit.csv`` into a run's table, is :mod:`fastleaf.data.audit_rows`.

This module imports nothing heavy: the command line reads its choices while building parsers.
"""
# cleanlab's filter_by rules; "prune_by_noise_rate" is its own default
METHODS = ("prune_by_noise_rate", "prune_by_class", "both", "confident_learning",
           "predicted_neq_given")
DEFAULT_METHOD = "prune_by_noise_rate"
