"""Paired statistics over seeds: the per-seed differences of two methods, their mean and a 95% t-interval.

Runs of two methods with the same seed share the student's initialisation and the data order, so the per-seed
difference cancels what the seed alone decides. The interval is the t-interval of the mean difference over seeds
(n - 1 degrees of freedom); it says nothing about the test items' sampling, which every method shares.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping
from dataclasses import dataclass

# Two-sided 95% quantiles of Student's t, t_{0.975, df}, for df = 1..30 (then 40, 60, 120 and the normal limit).
T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip
T975_TAIL = ((40, 2.021), (60, 2.000), (120, 1.980))
Z975 = 1.960


def t975(df: int) -> float:
    """t_{0.975, df}: exact to three decimals for df <= 30, the next tabulated df above 30 (conservative)."""
    if df < 1:
        raise ValueError(f"a t-interval needs at least 1 degree of freedom, got {df}")
    if df <= len(T975):
        return T975[df - 1]
    return next((t for limit, t in T975_TAIL if df <= limit), Z975)


@dataclass(frozen=True)
class Interval:
    """Mean of ``values`` with a 95% t-interval (``None`` bounds with fewer than two values)."""

    values: tuple[float, ...]
    mean: float
    ci_low: float | None
    ci_high: float | None

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def positive(self) -> int:
        """How many values are above zero (the sign count)."""
        return sum(v > 0 for v in self.values)


def t_interval(values: list[float]) -> Interval:
    """The mean of ``values`` and its 95% t-interval."""
    if not values:
        raise ValueError("an interval needs at least one value")
    mean = statistics.fmean(values)
    if len(values) < 2:
        return Interval(tuple(values), mean, None, None)
    half = t975(len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
    return Interval(tuple(values), mean, mean - half, mean + half)


def paired(a: Mapping[int, float], b: Mapping[int, float], shift: float = 0.0) -> Interval | None:
    """Per-seed ``a[s] - b[s] + shift`` over the seeds both have, with its t-interval; None without a shared seed."""
    seeds = sorted(set(a) & set(b))
    if not seeds:
        return None
    return t_interval([a[s] - b[s] + shift for s in seeds])


def slope(points: Mapping[float, Mapping[int, float]]) -> Interval | None:
    """The least-squares slope of value against x, per seed, over the seeds present at every x; with its t-interval.

    Args:
        points: x -> seed -> value (e.g. log2(Ht/Hs) -> seed -> AMAD minus one-to-one).
    """
    xs = sorted(points)
    if len(xs) < 2:
        return None
    seeds = sorted(set.intersection(*(set(points[x]) for x in xs)))
    if not seeds:
        return None
    x_mean = statistics.fmean(xs)
    denom = sum((x - x_mean) ** 2 for x in xs)
    per_seed = []
    for s in seeds:
        ys = [points[x][s] for x in xs]
        y_mean = statistics.fmean(ys)
        per_seed.append(sum((x - x_mean) * (y - y_mean) for x, y in zip(xs, ys)) / denom)
    return t_interval(per_seed)


def verdict(interval: Interval | None) -> str:
    """supported (the interval is above 0), contradicted (below 0), inconclusive otherwise or without an interval."""
    if interval is None or interval.ci_low is None:
        return "inconclusive"
    if interval.ci_low > 0:
        return "supported"
    if interval.ci_high < 0:
        return "contradicted"
    return "inconclusive"
