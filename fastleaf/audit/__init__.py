"""Label audit: likely wrong labels from out-of-fold probabilities, near-copies whose labels
disagree, test images that copy training images.  The ``train --exclude/--relabel`` side, which
reads an ``audit.csv`` into a run's table, is :mod:`fastleaf.data.audit_rows`.

This module imports nothing heavy: the command line reads its choices while building parsers.
"""
# below_chance: the out-of-fold prediction is another class and the given label's probability
# is under 1 / classes; the others are cleanlab's filter_by rules (prune_by_noise_rate is
# cleanlab's own default).  benchmarks/audit_noise.py measures each against known flips
BELOW_CHANCE = "below_chance"
CLEANLAB_METHODS = ("low_self_confidence", "low_normalized_margin", "prune_by_noise_rate",
                    "prune_by_class", "both", "confident_learning", "predicted_neq_given")
METHODS = (BELOW_CHANCE, *CLEANLAB_METHODS)
DEFAULT_METHOD = BELOW_CHANCE
