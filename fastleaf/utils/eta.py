"""Durations in words and the time left of planned work: one arithmetic for the bench's cases
and the study's models."""
from __future__ import annotations


def duration(seconds: float) -> str:
    """``42 s``, ``3 min 5 s``, ``1 h 2 min``."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def time_left(estimates: list[float], actuals: list[float]) -> float:
    """Seconds left: the estimates of the items not done yet, scaled by how the finished ones
    (the first ``len(actuals)``, their wall times) compared with their own estimates."""
    done = len(actuals)
    left = sum(estimates[done:])
    expected, spent = sum(estimates[:done]), sum(actuals)
    if done and expected > 0 and spent > 0:
        left *= spent / expected
    return left
