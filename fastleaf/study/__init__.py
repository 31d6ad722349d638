"""``fastleaf reproduce``: the paper's four models as one study: plan, budget, runs, statistics, report."""
