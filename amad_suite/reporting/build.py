"""build_report: the whole report (tables, figures, summary.json, results.md) from a results tree."""

from __future__ import annotations

import json
from pathlib import Path

from amad.atomic import write_text
from amad.errors import ConfigError
from amad_suite.reporting import figures as F
from amad_suite.reporting.aggregate import Group, group_runs, task_metrics, tasks_of
from amad_suite.reporting.claims import (
    ClaimsConfig,
    claims_rows,
    claims_table,
    head_ratio_rows,
    head_ratio_table,
    qualification_table,
    qualify_all,
)
from amad_suite.reporting.collect import load_eval_runs, load_history, load_npz, reference_runs, teacher_leaks
from amad_suite.reporting.published import Published, load_published
from amad_suite.reporting.render import to_csv, to_latex, to_markdown
from amad_suite.reporting.schema import AMAD_METHODS, METHOD_ORDER, REFERENCE, family_label, method_label
from amad_suite.reporting.summary import results_index, study_section, summary_metrics
from amad_suite.reporting.tables import cost_table, task_table


def build_report(
    results_dir: Path,
    out_dir: Path,
    *,
    published_path: Path | None = None,
    baseline_method: str = "logit",
    claims: ClaimsConfig | None = None,
    baselines: dict[str, str] | None = None,
) -> dict[str, Path]:
    """Write the report for every run evaluated under ``results_dir`` into ``out_dir``.

    Reads ``<results_dir>/eval/*.json``, the DVCLive histories and the alignment/attention npz files of
    ``<results_dir>/distill/<run>`` and ``<results_dir>/teachers/<family>-<task>``. Writes (atomically)
    ``tables/<task>.{md,tex,csv}``, ``tables/cost.{md,tex,csv}``, ``figures/*.png``, ``summary.json`` and
    ``results.md`` under ``out_dir``.

    Args:
        results_dir: the pipeline's ``results`` folder.
        out_dir: the report folder (``reports``).
        published_path: the hand-filled published numbers (``reports/published.yaml``); None for none.
        baseline_method: the student method the Δ column compares against.
        claims: which methods the claims compare (None: the defaults of ClaimsConfig).
        baselines: task -> the name of its blind baseline (the qualification check's bar).

    Returns:
        Output path relative to ``out_dir`` (posix string) -> absolute path, for every file written.

    Raises:
        DataError: no eval files, or a malformed eval/history/npz file (the message names it).
        ConfigError: unknown names in the published file, or an unknown ``baseline_method``.
    """
    results_dir, out_dir = Path(results_dir), Path(out_dir)
    runs = load_eval_runs(results_dir)
    groups = group_runs(runs + reference_runs(runs))
    methods = {g.method for g in groups}
    if baseline_method not in methods and baseline_method not in METHOD_ORDER:
        allowed = ", ".join(sorted(methods | set(METHOD_ORDER)))
        raise ConfigError(f"unknown baseline method '{baseline_method}'; use one of {allowed}")
    published: Published = {}
    if published_path is not None:
        metrics = {t: task_metrics(groups, t) for t in tasks_of(groups)}
        published = load_published(published_path, extra_methods=methods, extra_metrics=metrics)

    written: dict[str, Path] = {}

    def emit(rel: str, text: str) -> None:
        written[rel] = write_text(out_dir / rel, text)

    table_md: list[tuple[str, str]] = []
    leaks = teacher_leaks(results_dir, sorted({(g.family, g.task) for g in groups}))
    tables = [task_table(groups, t, published, baseline_method, leaks) for t in tasks_of(groups)]
    for table in [*tables, cost_table(groups)]:
        md = to_markdown(table)
        emit(f"tables/{table.name}.md", md)
        emit(f"tables/{table.name}.tex", to_latex(table))
        emit(f"tables/{table.name}.csv", to_csv(table))
        table_md.append((f"tables/{table.name}.md", md))

    for rel, fig in _figures(results_dir, groups):
        written[rel] = F.save_png(fig, out_dir / rel)

    scale = "/".join(sorted({r.preset for r in runs}))
    cfg = claims or ClaimsConfig()
    qualified = qualify_all(groups, cfg.none, baselines or {})
    claim_rows = claims_rows(groups, qualified, cfg, scale)
    extra = [claims_table(claim_rows, scale), qualification_table(qualified), head_ratio_table(head_ratio_rows(groups))]
    for table in extra:
        md = to_markdown(table)
        emit(
            f"{table.name}.csv" if table.name in ("claims", "head_ratio") else f"tables/{table.name}.csv", to_csv(table)
        )
        emit(f"{table.name}.md" if table.name == "claims" else f"tables/{table.name}.md", md)
        emit(f"{table.name}.tex" if table.name == "claims" else f"tables/{table.name}.tex", to_latex(table))
    figure = F.delta_by_head_ratio(groups, baseline_method)
    if figure is not None:
        written["figures/head_ratio.png"] = F.save_png(figure, out_dir / "figures" / "head_ratio.png")
    figure_paths = [rel for rel in written if rel.startswith("figures/")]
    emit("summary.json", json.dumps(summary_metrics(groups, runs), indent=2, sort_keys=True) + "\n")
    claims_md = [(t.name, to_markdown(t)) for t in extra[:2]]
    study = study_section(out_dir) if scale != "study" else ""  # the study's own report does not quote itself
    emit("results.md", results_index(runs, table_md, figure_paths, bool(published), baseline_method, claims_md, study))
    return written


def _figures(results_dir: Path, groups: list[Group]):
    """Yield (path relative to the report folder, Figure) for every figure the inputs allow."""
    for task in tasks_of(groups):
        yield f"figures/metric_{task}.png", F.metric_by_method(groups, task)

    pairs = list(dict.fromkeys((g.family, g.task) for g in groups))
    for family, task in pairs:
        students = [g for g in groups if (g.family, g.task) == (family, task) and g.role == "student"]
        histories = {g.method: [load_history(r.run_dir(results_dir) / "dvclive") for r in g.runs] for g in students}
        fig = F.training_curves(histories, f"{family_label(family)} · {task}: student training curves")
        if fig is not None:
            yield f"figures/curves_{family}-{task}.png", fig

    teacher_hist = {}
    for g in groups:
        if g.role == "teacher":
            history = load_history(g.representative().run_dir(results_dir) / "dvclive")
            if history:
                teacher_hist[f"{g.family}-{g.task}"] = [history]
    fig = F.training_curves(teacher_hist, "teacher training curves") if teacher_hist else None
    if fig is not None:
        yield "figures/curves_teachers.png", fig

    for g in groups:
        if g.method not in AMAD_METHODS:
            continue
        run = g.representative()
        path = run.run_dir(results_dir) / "alignment.npz"
        chosen = F.split_alignment(load_npz(path), path)
        title = f"{family_label(g.family)} · {g.task} · {method_label(g.method)} (seed {run.seed}): head alignment"
        fig = F.alignment_heatmaps(chosen, title)
        if fig is not None:
            yield f"figures/alignment_{g.family}-{g.task}-{g.method}.png", fig

    for family, task in pairs:
        models = []
        for g in groups:
            if (g.family, g.task) == (family, task) and g.role != REFERENCE:
                run = g.representative()
                label = method_label(g.method) if g.role == "teacher" else f"{method_label(g.method)} s{run.seed}"
                models.append((label, load_npz(run.run_dir(results_dir) / "attention_example.npz")))
        fig = F.attention_grid(models, f"{family_label(family)} · {task}: attention on one test example")
        if fig is not None:
            yield f"figures/attention_{family}-{task}.png", fig
