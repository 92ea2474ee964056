"""The paper's claims, computed from the eval records with paired seeds (issue 15); never written by hand.

Qualification first: a setup (family, task) enters a verdict only if its teacher beats its no-KD student by more
than the seed noise, and that student beats the task's blind baseline. Then, per qualifying setup and student head
count, every AMAD arm is compared with its rival on the headline metric, seed by seed:

- C1: AMAD beats one-to-one when Hs < Ht.
- C2: AMAD is no worse than one-to-one when Hs = Ht (non-inferiority: the difference is shifted by a margin).
- C3: AMAD beats logit-only KD.   C4: AMAD beats the same student without KD.
- C5: AMAD's advantage over one-to-one grows as Hs/Ht shrinks: the slope of that difference against log2(Ht/Hs).
- C6: AMAD students cover the teacher heads one-to-one drops: one-to-one's mean coverage KL over the dropped heads
  minus AMAD's (positive = AMAD covers them better).

``delta`` is signed so that positive favours the claim; the interval is the 95% t-interval over seeds
(amad_suite.reporting.stats), and the verdict is supported (ci_low > 0), contradicted (ci_high < 0) or
inconclusive.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

import pandas as pd

from amad_suite.pipeline.params import ClaimsConfig
from amad_suite.reporting.aggregate import Group
from amad_suite.reporting.render import Table
from amad_suite.reporting.schema import REFERENCE
from amad_suite.reporting.stats import Interval, paired, slope, t_interval, verdict

COLUMNS = (
    "claim",
    "family",
    "task",
    "metric",
    "comparison",
    "teacher_heads",
    "student_heads",
    "n_seeds",
    "delta",
    "ci_low",
    "ci_high",
    "verdict",
)
EXTRA_COLUMNS = ("per_seed", "positive_seeds", "scale")


@dataclass(frozen=True)
class Qualification:
    """The checks of one setup at one student head count (each cell of the head-ratio matrix has its own no-KD
    student, so each qualifies on its own)."""

    family: str
    task: str
    student_heads: int | None
    teacher: float | None
    no_kd: Interval | None
    baseline: float | None
    baseline_name: str
    failed: tuple[str, ...]

    @property
    def qualifies(self) -> bool:
        return not self.failed


def _by_seed(group: Group) -> dict[int, float]:
    return {
        r.seed: r.metrics[r.headline]
        for r in group.runs
        if r.seed is not None and r.metrics.get(r.headline) is not None
    }


def qualify(
    groups: list[Group], family: str, task: str, none: str, baseline_name: str, heads: int | None = None
) -> Qualification:
    """The two checks of a setup (at ``heads`` student heads; None: every no-KD group of the setup): teacher - no-KD
    > 2 std of the no-KD seeds (more than the seed noise), and the no-KD mean's 95% interval above the blind
    baseline. Fewer than two no-KD seeds cannot show either."""
    mine = [g for g in groups if (g.family, g.task) == (family, task)]
    teacher = next((g.stat(g.headline).mean for g in mine if g.role == "teacher"), None)
    base = next((g.stat(g.headline).mean for g in mine if g.role == REFERENCE and g.method == baseline_name), None)
    no_kd_groups = [
        g for g in mine if g.method == none and g.role == "student" and (heads is None or g.heads() == heads)
    ]
    values = [v for g in no_kd_groups for v in _by_seed(g).values()]
    no_kd = t_interval(values) if values else None
    failed = []
    if no_kd is None or no_kd.n < 2:
        failed.append(f"fewer than 2 seeds of the no-KD student ({none})")
    else:
        noise = 2 * statistics.stdev(values)
        if teacher is None or not teacher - no_kd.mean > noise:
            failed.append(f"teacher does not beat the no-KD student by more than 2 seed std ({noise:.2f})")
        if base is None or not no_kd.ci_low > base:
            failed.append(f"no-KD student not above the {baseline_name} baseline")
    return Qualification(family, task, heads, teacher, no_kd, base, baseline_name, tuple(failed))


def qualify_all(groups: list[Group], none: str, baselines: dict[str, str]) -> list[Qualification]:
    """One qualification per setup and student head count that has students."""
    cells = dict.fromkeys((g.family, g.task, g.heads()) for g in groups if g.role == "student")
    return [qualify(groups, f, t, none, baselines.get(t, ""), heads=h) for f, t, h in sorted(cells, key=str)]


def _row(claim, family, task, metric, comparison, t_heads, s_heads, interval: Interval | None, scale) -> dict:
    def r(x: float | None) -> float | None:
        return None if x is None else round(x, 4)

    return {
        "claim": claim,
        "family": family,
        "task": task,
        "metric": metric,
        "comparison": comparison,
        "teacher_heads": t_heads,
        "student_heads": s_heads,
        "n_seeds": 0 if interval is None else interval.n,
        "delta": None if interval is None else r(interval.mean),
        "ci_low": None if interval is None else r(interval.ci_low),
        "ci_high": None if interval is None else r(interval.ci_high),
        "verdict": verdict(interval),
        "per_seed": "" if interval is None else " ".join(f"{v:+.2f}" for v in interval.values),
        "positive_seeds": "" if interval is None else f"{interval.positive}/{interval.n}",
        "scale": scale,
    }


def _dropped_coverage(group: Group, student_heads: int) -> dict[int, float]:
    """seed -> mean coverage KL over the teacher heads one-to-one's "first Hs" pairing leaves out (heads >= Hs)."""
    out = {}
    for run in group.runs:
        per_pair = [v[student_heads:] for v in run.coverage.values() if len(v) > student_heads]
        values = [x for pair in per_pair for x in pair]
        if values and run.seed is not None:
            out[run.seed] = statistics.fmean(values)
    return out


def claims_rows(groups: list[Group], qualified: list[Qualification], cfg: ClaimsConfig, scale: str) -> list[dict]:
    """Every claim row the records allow, for the qualifying setups."""
    rows = []
    passed: dict[tuple[str, str], set[int | None]] = {}
    for q in qualified:
        if q.qualifies:
            passed.setdefault((q.family, q.task), set()).add(q.student_heads)
    for family, task in passed:
        mine = [g for g in groups if (g.family, g.task) == (family, task) and g.role == "student"]
        teacher_heads = next(
            (g.heads() for g in groups if (g.family, g.task, g.role) == (family, task, "teacher")), None
        )
        metric = mine[0].headline if mine else ""
        by_heads: dict[int, dict[str, Group]] = {}
        for g in mine:  # only the head counts whose own no-KD student qualified (None: qualified as a whole)
            if None in passed[(family, task)] or g.heads() in passed[(family, task)]:
                by_heads.setdefault(g.heads() or 0, {})[g.method] = g
        for arm in cfg.amad:
            slope_points: dict[float, dict[int, float]] = {}
            for hs, methods in sorted(by_heads.items(), reverse=True):
                if arm not in methods:
                    continue
                ours = _by_seed(methods[arm])
                label = f"{arm} − {{}}"
                rival = methods.get(cfg.one_to_one)
                if rival is not None and teacher_heads:
                    if hs < teacher_heads:
                        rows.append(_row("C1", family, task, metric, label.format(cfg.one_to_one), teacher_heads,
                                         hs, paired(ours, _by_seed(rival)), scale))  # fmt: skip
                        cover = paired(_dropped_coverage(rival, hs), _dropped_coverage(methods[arm], hs))
                        if cover is not None:  # coverage is measured when the evaluate stage had the teacher
                            rows.append(_row("C6", family, task, "coverage KL of dropped heads",
                                             f"{cfg.one_to_one} − {arm}", teacher_heads, hs, cover, scale))  # fmt: skip
                    elif hs == teacher_heads:
                        margin = cfg.margin.get(task, 0.0)
                        comparison = f"{arm} − {cfg.one_to_one} + {margin:g} (margin)"
                        rows.append(_row("C2", family, task, metric, comparison, teacher_heads, hs,
                                         paired(ours, _by_seed(rival), shift=margin), scale))  # fmt: skip
                    diff = paired(ours, _by_seed(rival))
                    if diff is not None:
                        slope_points[math.log2(teacher_heads / hs)] = dict(
                            zip(sorted(set(ours) & set(_by_seed(rival))), diff.values)
                        )
                for claim, name in (("C3", cfg.logit), ("C4", cfg.none)):
                    if name in methods:
                        rows.append(_row(claim, family, task, metric, label.format(name), teacher_heads, hs,
                                         paired(ours, _by_seed(methods[name])), scale))  # fmt: skip
            if len(slope_points) >= 2:
                heads = ",".join(str(h) for h in sorted(by_heads, reverse=True))
                rows.append(_row("C5", family, task, f"slope of {metric} difference per log2(Ht/Hs)",
                                 f"d({arm} − {cfg.one_to_one}) / d log2(Ht/Hs)", teacher_heads, heads,
                                 slope(slope_points), scale))  # fmt: skip
    return rows


def head_ratio_rows(groups: list[Group]) -> list[dict]:
    """family, task, teacher_heads, student_heads, method, n_seeds, metric, mean, ci_low, ci_high: each student
    group's headline mean with its 95% t-interval over seeds."""
    rows = []
    for g in (g for g in groups if g.role == "student"):
        teacher = next((t for t in groups if (t.family, t.task, t.role) == (g.family, g.task, "teacher")), None)
        values = list(_by_seed(g).values())
        if not values:
            continue
        interval = t_interval(values)
        rows.append(
            {
                "family": g.family,
                "task": g.task,
                "teacher_heads": teacher.heads() if teacher else None,
                "student_heads": g.heads(),
                "method": g.method,
                "n_seeds": interval.n,
                "metric": g.headline,
                "mean": round(interval.mean, 4),
                "ci_low": None if interval.ci_low is None else round(interval.ci_low, 4),
                "ci_high": None if interval.ci_high is None else round(interval.ci_high, 4),
            }
        )
    return rows


def _cell(value) -> str:
    if value is None or value == "":
        return "—"
    return f"{value:+.2f}" if isinstance(value, float) else str(value)


def claims_table(rows: list[dict], scale: str) -> Table:
    columns = [*COLUMNS, *EXTRA_COLUMNS]
    frame = pd.DataFrame(rows, columns=columns)
    display = [[_cell(row[c]) for c in columns] for row in rows]
    note = "mini-scale evidence: tiny models and data, read with the README's caveats" if scale == "mini" else scale
    caption = f"The paper's claims, paired over seeds with 95% t-intervals ({note})"
    numeric = [c in ("teacher_heads", "n_seeds", "delta", "ci_low", "ci_high") for c in columns]
    return Table("claims", caption, columns, display, frame, numeric=numeric)


def qualification_table(qualified: list[Qualification]) -> Table:
    columns = ["family", "task", "student heads", "teacher", "no-KD (mean [95% CI])", "blind baseline", "status"]
    rows, records = [], []
    for q in qualified:
        no_kd = "—" if q.no_kd is None else f"{q.no_kd.mean:.2f}"
        if q.no_kd is not None and q.no_kd.ci_low is not None:
            no_kd += f" [{q.no_kd.ci_low:.2f}, {q.no_kd.ci_high:.2f}]"
        status = "qualifies" if q.qualifies else "pipeline only: " + "; ".join(q.failed)
        base = "—" if q.baseline is None else f"{q.baseline:.2f} ({q.baseline_name})"
        heads = "all" if q.student_heads is None else str(q.student_heads)
        rows.append([q.family, q.task, heads, "—" if q.teacher is None else f"{q.teacher:.2f}", no_kd, base, status])
        records.append({"family": q.family, "task": q.task, "student_heads": q.student_heads, "teacher": q.teacher,
                        "baseline": q.baseline,
                        "baseline_name": q.baseline_name, "no_kd_mean": None if q.no_kd is None else q.no_kd.mean,
                        "qualifies": q.qualifies, "failed": "; ".join(q.failed)})  # fmt: skip
    caption = "Which setups can carry a claim: the teacher and the blind baseline against the no-KD student"
    return Table("qualification", caption, columns, rows, pd.DataFrame(records), numeric=[0, 0, 1, 1, 1, 1, 0])


def head_ratio_table(rows: list[dict]) -> Table:
    columns = ["family", "task", "teacher_heads", "student_heads", "method", "n_seeds", "metric", "mean", "ci_low",
               "ci_high"]  # fmt: skip
    display = [[_cell(r[c]) if isinstance(r[c], float) and c != "mean" else str(r[c]) for c in columns] for r in rows]
    for row, r in zip(display, rows):
        row[7] = f"{r['mean']:.2f}"
    frame = pd.DataFrame(rows, columns=columns)
    numeric = [c in ("teacher_heads", "student_heads", "n_seeds", "mean", "ci_low", "ci_high") for c in columns]
    return Table("head_ratio", "Every student's headline mean with its 95% t-interval over seeds", columns, display,
                 frame, numeric=numeric)  # fmt: skip
