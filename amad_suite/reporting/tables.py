"""Paper-style result tables (one per task) and the cost table."""

from __future__ import annotations

import statistics

import pandas as pd

from amad_suite.reporting.aggregate import Group, Stat, baseline_delta, task_metrics
from amad_suite.reporting.published import Published, published_metrics, published_value
from amad_suite.reporting.render import Table
from amad_suite.reporting.schema import (
    REFERENCE,
    REFERENCE_NOTES,
    TEACHER,
    family_label,
    method_key,
    method_label,
    metric_order,
)

NA = "n/a"  # the metric is unavailable (e.g. SPICE without Java)
DASH = "—"  # not applicable / not filled in


def format_stat(stat: Stat, digits: int = 2) -> str:
    """``mean ± std`` when two or more seeds report a value, the plain mean for one, ``n/a`` for none."""
    if stat.mean is None:
        return NA
    if stat.std is None:
        return f"{stat.mean:.{digits}f}"
    return f"{stat.mean:.{digits}f} ± {stat.std:.{digits}f}"


def format_delta(delta: float | None, digits: int = 2) -> str:
    """Signed difference, ``n/a`` when it cannot be computed."""
    return NA if delta is None else f"{delta:+.{digits}f}"


def _breaks(groups: list[Group], key) -> list[int]:
    return [i for i in range(1, len(groups)) if key(groups[i]) != key(groups[i - 1])]


def task_table(
    groups: list[Group],
    task: str,
    published: Published,
    baseline_method: str = "logit",
    leaks: dict[tuple[str, str], str] | None = None,
) -> Table:
    """The results table of one task.

    ``leaks``: (family, task) -> why that setup's teacher started from a checkpoint that saw test images; its rows
    (teacher and students alike) are marked † and the reason goes into the caption.

    Rows: per family, the teacher then the students in method order. Columns: family, method, heads, n (runs), each
    metric as mean ± std over seeds, the headline delta to the ``baseline_method`` student of the same family, and,
    only for metrics with published values, ``paper <metric>`` and ``Δ paper <metric>``.
    """
    rows_g = [g for g in groups if g.task == task]
    if not rows_g:
        raise ValueError(f"no runs for task {task}")
    metrics = task_metrics(groups, task)
    headline = rows_g[0].headline
    paper_metrics = metric_order(task, published_metrics(published, task))
    delta_name = f"Δ {headline} vs {baseline_method}"
    columns = ["Family", "Method", "Heads", "n", *metrics, delta_name]
    for m in paper_metrics:
        columns += [f"paper {m}", f"Δ paper {m}"]
    rows: list[list[str]] = []
    records: list[dict] = []
    for g in rows_g:
        stats = {m: g.stat(m) for m in metrics}
        delta = None if g.method == baseline_method else baseline_delta(groups, g, baseline_method)
        heads = g.heads()
        mark = " †" if (g.family, task) in (leaks or {}) else ""
        cells = [family_label(g.family) + mark, method_label(g.method), DASH if heads is None else str(heads), str(g.n)]
        cells += [format_stat(stats[m]) for m in metrics]
        cells.append(DASH if g.method == baseline_method else format_delta(delta))
        record: dict = {"family": g.family, "method": g.method, "role": g.role, "heads": heads, "n": g.n}
        record["teacher_saw_test_split"] = (leaks or {}).get((g.family, task))
        for m in metrics:
            record[m] = stats[m].mean
            record[f"{m}_std"] = stats[m].std
        record[f"delta_vs_{baseline_method}"] = delta
        for m in paper_metrics:
            paper = published_value(published, task, g.family, g.method, m)
            ours = g.stat(m).mean
            paper_delta = None if paper is None or ours is None else ours - paper
            cells += [DASH if paper is None else f"{paper:.2f}", DASH if paper is None else format_delta(paper_delta)]
            record[f"paper_{m}"] = paper
            record[f"delta_paper_{m}"] = paper_delta
        rows.append(cells)
        records.append(record)
    caption = (
        f"{task}: mean ± sample std over seeds (n runs); {delta_name} is the headline mean difference"
        f" to the same family's {baseline_method} student"
    )
    for method in dict.fromkeys(g.method for g in rows_g if g.role == REFERENCE and g.method in REFERENCE_NOTES):
        caption += f"; {method_label(method)} {REFERENCE_NOTES[method]}"
    for (family, leaked_task), reason in sorted((leaks or {}).items()):
        if leaked_task == task:
            caption += f"; † {family_label(family)}'s teacher saw test images: {reason}"
    if paper_metrics:
        caption += "; paper columns come from reports/published.yaml"
    return Table(
        name=task,
        caption=caption,
        columns=columns,
        rows=rows,
        frame=pd.DataFrame.from_records(records),
        breaks=_breaks(rows_g, lambda g: g.family),
        numeric=[False, False, True, True] + [True] * (len(columns) - 4),
    )


def _mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


def cost_table(groups: list[Group]) -> Table:
    """Parameters, latency, throughput and speed-up vs the teacher, per family/task and model size, and the device
    the latency was measured on.

    Students of one size share a row whatever their method (cost depends on the architecture only); latency and
    throughput are averaged over all runs of that size. A speed-up is only given where the teacher was timed on the
    same device(s).
    """
    models: dict[tuple[str, str, str, str], list] = {}
    for g in groups:
        if g.role == REFERENCE:  # not a model: nothing to time
            continue
        for run in g.runs:
            size = str(run.model.get("size") or run.role)
            models.setdefault((run.task, run.family, run.role, size), []).append(run)
    keys = sorted(models, key=lambda k: (_task_pos(groups, k[0], k[1]), k[2] != TEACHER, k[3]))
    columns = ["Family", "Task", "Model", "Methods", "Heads", "Params (M)", "Latency (ms/sample)"]
    columns += ["Throughput (samples/s)", "Speed-up", "Device"]
    rows, records = [], []
    for task, family, role, size in keys:
        runs = models[(task, family, role, size)]
        params = _mean([r.cost["params"] for r in runs if "params" in r.cost])
        latency = _mean([r.cost["latency_s_per_sample"] for r in runs if "latency_s_per_sample" in r.cost])
        throughput = _mean([r.cost["throughput_samples_per_s"] for r in runs if "throughput_samples_per_s" in r.cost])
        teacher = [r for (t, f, ro, _), rs in models.items() if (t, f, ro) == (task, family, TEACHER) for r in rs]
        t_lat = _mean([r.cost["latency_s_per_sample"] for r in teacher if "latency_s_per_sample" in r.cost])
        devices = _devices(runs)
        speedup = t_lat / latency if t_lat is not None and latency and _devices(teacher) == devices else None
        methods = sorted({r.method for r in runs}, key=method_key)
        heads = runs[0].model.get("heads")
        rows.append(
            [
                family_label(family),
                task,
                f"{role} ({size})" if size != role else role,
                ", ".join(methods),
                str(heads) if isinstance(heads, int) else DASH,
                NA if params is None else f"{params / 1e6:.2f}",
                NA if latency is None else f"{latency * 1e3:.2f}",
                NA if throughput is None else f"{throughput:.1f}",
                NA if speedup is None else f"{speedup:.2f}×",
                devices or NA,
            ]
        )
        records.append(
            {
                "family": family,
                "task": task,
                "role": role,
                "size": size,
                "methods": " ".join(methods),
                "heads": heads if isinstance(heads, int) else None,
                "params": params,
                "latency_ms_per_sample": None if latency is None else latency * 1e3,
                "throughput_samples_per_s": throughput,
                "speedup_vs_teacher": speedup,
                "device": devices or None,
            }
        )
    return Table(
        name="cost",
        caption="Inference cost: parameters, latency per sample, throughput and speed-up vs the teacher",
        columns=columns,
        rows=rows,
        frame=pd.DataFrame.from_records(records),
        breaks=[i for i in range(1, len(keys)) if keys[i][:2] != keys[i - 1][:2]],
        numeric=[False, False, False, False, True, True, True, True, True, False],
    )


def _devices(runs: list) -> str:
    """The devices the runs' latency was measured on (cost.device), comma-separated; "" for records without one."""
    return ", ".join(sorted({str(r.cost["device"]) for r in runs if "device" in r.cost}))


def _task_pos(groups: list[Group], task: str, family: str) -> int:
    return next(i for i, g in enumerate(groups) if (g.task, g.family) == (task, family))
