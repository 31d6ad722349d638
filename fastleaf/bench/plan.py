"""The bench's plan: its cases in order, what each will cost, what fits the budget, the ETA.

Before anything is timed, each model is probed (one warm-up and one timed step per mode on a
synthetic batch) and every case's cost is estimated from that step time and the measurement
settings (warm-up steps, repeats of at most ``steps`` steps, each cut short after
``max_seconds``).  Cases are kept in order while their estimates fit the budget; the rest are
skipped with their estimated cost.  While the bench runs, the estimate of what is left is
scaled by how the finished cases compared with their estimates (the loader's share is not in
the probe), so the ETA tightens as it goes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..utils.eta import duration, time_left

# default budget of a bare `fastleaf bench` on a CPU: its four models take tens of minutes there
CPU_BUDGET_S = 240.0
# the probe's batch on a CPU: a step's time grows about linearly with the batch there, so a
# small batch scaled up costs a fraction of a full one (VGG16 trains 50 images in ~16 s)
CPU_PROBE_BATCH = 4


@dataclass(frozen=True)
class Case:
    model: str
    flags: object          # measure.Flags
    mode: str
    loader: str

    def label(self) -> str:
        return f"{self.model} {self.mode} {self.loader} {self.flags.label()}"


def repeat_seconds(step_s: float, steps: int, max_seconds: float) -> float:
    """One timed repeat: ``steps`` steps, stopped after the first step that ends past
    ``max_seconds`` (at least one step runs)."""
    if step_s <= 0:
        return 0.0
    cut = max(1, math.ceil(max_seconds / step_s))
    return min(steps, cut) * step_s


def case_seconds(step_s: float, warmup: int, steps: int, repeats: int,
                 max_seconds: float, setup_s: float = 0.0) -> float:
    """Estimated wall time of one case from its step time."""
    return setup_s + warmup * step_s + repeats * repeat_seconds(step_s, steps, max_seconds)


@dataclass
class Plan:
    cases: list[Case]
    estimates: list[float]                       # seconds, one per case
    skipped: list[tuple[Case, float]] = field(default_factory=list)   # over the budget

    @property
    def total(self) -> float:
        return sum(self.estimates)


def fit_budget(cases: list[Case], estimates: list[float], budget: float | None,
               spent: float = 0.0) -> Plan:
    """Keep cases in order while they fit in ``budget`` seconds (``spent`` already used, e.g.
    by the probe); a case that does not fit is skipped, a cheaper later one may still run."""
    if budget is None:
        return Plan(list(cases), list(estimates))
    plan, left = Plan([], []), budget - spent
    for case, seconds in zip(cases, estimates):
        if seconds <= left:
            plan.cases.append(case)
            plan.estimates.append(seconds)
            left -= seconds
        else:
            plan.skipped.append((case, seconds))
    return plan


class Eta:
    """Time left while cases finish (:func:`~fastleaf.utils.eta.time_left`)."""

    def __init__(self, estimates: list[float]):
        self.estimates = list(estimates)
        self.actuals: list[float] = []     # wall seconds of the finished cases, in order

    @property
    def done(self) -> int:
        return len(self.actuals)

    def finished(self, seconds: float) -> None:
        self.actuals.append(seconds)

    @property
    def ratio(self) -> float:
        expected, spent = sum(self.estimates[:self.done]), sum(self.actuals)
        return spent / expected if expected > 0 and spent > 0 else 1.0

    @property
    def left(self) -> float:
        return time_left(self.estimates, self.actuals)


def describe(plan: Plan, budget: float | None, probe_s: float) -> list[str]:
    """The lines printed before timing: the cases in order with their estimates, the total,
    and what the budget left out."""
    lines = [f"plan: {len(plan.cases)} cases, about {duration(plan.total)} "
             f"(estimated from a {duration(probe_s)} probe of each model"
             + (f"; budget {duration(budget)}" if budget is not None else "") + ")"]
    lines += [f"  {i:>3}. {case.label():<48} ~{duration(s)}"
              for i, (case, s) in enumerate(zip(plan.cases, plan.estimates), 1)]
    if plan.skipped:
        cost = sum(s for _, s in plan.skipped)
        lines.append(f"over the budget, skipped: {len(plan.skipped)} cases (about "
                     f"{duration(cost)}): " + ", ".join(f"{c.label()} ~{duration(s)}"
                                                       for c, s in plan.skipped))
    return lines


def how_to_run_skipped(plan: Plan) -> str | None:
    """The summary's advice for cases the budget left out."""
    if not plan.skipped:
        return None
    models = sorted({case.model for case, _ in plan.skipped})
    cost = sum(s for _, s in plan.skipped)
    return (f"{len(plan.skipped)} cases were over the budget (about {duration(cost)} more): "
            f"run them with --budget inf, or one model at a time, e.g. "
            f"--models {models[0]} (--models turns the default CPU budget off)")
