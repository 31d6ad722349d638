"""``fastleaf reproduce``: the paper's four models as one study: a plan and its budget, the
runs, the statistics and the report."""
