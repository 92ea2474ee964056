"""Group eval runs by (task, family, method) and summarise metrics over seeds."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from amad_suite.reporting.collect import EvalRecord
from amad_suite.reporting.schema import FAMILIES, REFERENCE, TASKS, metric_order, order_key, row_key


@dataclass(frozen=True)
class Stat:
    """Mean and sample standard deviation (ddof=1) over the ``n`` runs that report a value."""

    mean: float | None
    std: float | None
    n: int


def summarize(values: list[float | None]) -> Stat:
    """Summarise one metric over seeds; ``None`` values (metric unavailable) are left out.

    std is the sample standard deviation (ddof=1), None when fewer than two values.
    """
    present = [v for v in values if v is not None]
    if not present:
        return Stat(None, None, 0)
    std = statistics.stdev(present) if len(present) > 1 else None
    return Stat(statistics.fmean(present), std, len(present))


@dataclass(frozen=True)
class Group:
    """All runs (seeds) of one (task, family, method); the teacher is method ``"teacher"``."""

    task: str
    family: str
    method: str
    runs: tuple[EvalRecord, ...]

    @property
    def role(self) -> str:
        return self.runs[0].role

    @property
    def headline(self) -> str:
        return self.runs[0].headline

    @property
    def n(self) -> int:
        return len(self.runs)

    def stat(self, metric: str) -> Stat:
        """Mean/std of ``metric`` over this group's runs."""
        return summarize([r.metrics.get(metric) for r in self.runs])

    def metrics(self) -> set[str]:
        """Names of every metric any run of the group reports."""
        return {m for r in self.runs for m in r.metrics}

    def representative(self) -> EvalRecord:
        """The run used for single-run figures: the lowest seed (runs without a seed first)."""
        return min(self.runs, key=lambda r: (r.seed is not None, r.seed or 0, r.run))

    def heads(self) -> int | None:
        """The main head count recorded in the eval file's ``model.heads``."""
        heads = self.runs[0].model.get("heads")
        return heads if isinstance(heads, int) else None


def _seed_key(run: EvalRecord) -> tuple[int, str]:
    return (run.seed or 0, run.run)


def _heads(run: EvalRecord) -> int:
    heads = run.model.get("heads")
    return heads if isinstance(heads, int) and run.role == "student" else 0


def group_runs(runs: list[EvalRecord]) -> list[Group]:
    """Group runs by (task, family, method, student heads) and order them: by task, by family, the teacher, the
    references, then students in METHOD_ORDER (more heads first)."""
    buckets: dict[tuple[str, str, str, str, int], list[EvalRecord]] = {}
    for run in runs:
        buckets.setdefault((run.task, run.family, run.role, run.method, _heads(run)), []).append(run)
    groups = [Group(t, f, m, tuple(sorted(rs, key=_seed_key))) for (t, f, _, m, _), rs in buckets.items()]
    return sorted(
        groups,
        key=lambda g: (
            order_key(TASKS, g.task),
            order_key(FAMILIES, g.family),
            row_key(g.role, g.method),
            -_heads(g.runs[0]),
        ),
    )


def tasks_of(groups: list[Group]) -> list[str]:
    """The tasks present, in TASKS order."""
    return sorted({g.task for g in groups}, key=lambda t: order_key(TASKS, t))


def task_metrics(groups: list[Group], task: str) -> list[str]:
    """Metric columns for ``task``: every metric any run reports, in paper order."""
    present: set[str] = set()
    for g in groups:
        if g.task == task:
            present |= g.metrics()
    return metric_order(task, present)


def baseline_delta(groups: list[Group], group: Group, baseline_method: str) -> float | None:
    """Headline mean of ``group`` minus that of the ``baseline_method`` student of the same family and task."""
    key = (group.task, group.family, baseline_method)
    base = next((g for g in groups if (g.task, g.family, g.method) == key and g.role != REFERENCE), None)
    if base is None:
        return None
    ours, theirs = group.stat(group.headline).mean, base.stat(group.headline).mean
    return None if ours is None or theirs is None else ours - theirs
