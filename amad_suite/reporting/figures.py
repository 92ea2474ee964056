"""Report figures drawn with matplotlib's Agg canvas (no pyplot, no global backend switch), saved as PNG."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure

from amad.atomic import write_bytes
from amad.errors import DataError
from amad_suite.reporting.aggregate import Group
from amad_suite.reporting.schema import (
    KIND_ORDER,
    METHOD_ORDER,
    REFERENCE,
    TEACHER,
    family_label,
    method_label,
    order_key,
)

DPI = 100
_PALETTE = [f"C{i}" for i in range(10)]
MAX_TOKEN_LABELS = 40


def method_color(method: str) -> str:
    """A colour per method that is the same in every figure."""
    if method == TEACHER:
        return "black"
    if method in METHOD_ORDER:
        return _PALETTE[METHOD_ORDER.index(method) % 10]
    return _PALETTE[(len(METHOD_ORDER) + sum(map(ord, method))) % 10]


def save_png(fig: Figure, path: Path) -> Path:
    """Render ``fig`` to PNG in memory and write it atomically."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return write_bytes(path, buf.getvalue())


def metric_by_method(groups: list[Group], task: str) -> Figure:
    """Headline metric per student method (bars: mean, error bars: sample std over seeds); teacher and references
    (e.g. the VQA question prior) as horizontal lines.

    One panel per family.
    """
    task_groups = [g for g in groups if g.task == task]
    families = list(dict.fromkeys(g.family for g in task_groups))
    fig = Figure(figsize=(4.2 * len(families), 3.4), layout="constrained")
    axes = fig.subplots(1, len(families), squeeze=False)[0]
    headline = task_groups[0].headline
    for ax, family in zip(axes, families):
        students = [g for g in task_groups if g.family == family and g.role == "student"]
        stats = [g.stat(headline) for g in students]
        xs = np.arange(len(students))
        means = [s.mean if s.mean is not None else np.nan for s in stats]
        errs = [s.std or 0.0 for s in stats]
        ax.bar(xs, means, yerr=errs, capsize=3, color=[method_color(g.method) for g in students])
        for x, g in zip(xs, students):
            ax.annotate(f"n={g.n}", (x, 0), xytext=(0, 2), textcoords="offset points", ha="center", fontsize=7)
        lines = [g for g in task_groups if g.family == family and g.role in (TEACHER, REFERENCE)]
        levels = [m + e for m, e in zip(means, errs) if not np.isnan(m)]
        for g in lines:
            level = g.stat(headline).mean
            if level is None:
                continue
            color, style = ("black", "--") if g.role == TEACHER else ("grey", ":")
            ax.axhline(level, color=color, linestyle=style, label=method_label(g.method))
            levels.append(level)
        if ax.get_legend_handles_labels()[0]:
            if levels and max(levels) > 0:  # headroom above the highest bar or line, for the legend
                ax.set_ylim(0, 1.3 * max(levels))
            ax.legend(loc="upper right", fontsize=8, ncols=2)
        ax.set_xticks(xs, [method_label(g.method) for g in students], rotation=30, ha="right", fontsize=8)
        ax.set_ylabel(headline)
        ax.set_title(f"{family_label(family)} · {task}")
    return fig


def _mean_curve(series: list[pd.Series]) -> pd.Series:
    """Mean over seeds, aligned on step: list of (steps,) -> (steps,)."""
    return pd.concat(series, axis=1).mean(axis=1).sort_index()


def _term_key(term: str) -> tuple[int, str]:
    return (0 if term.endswith("/loss") else 1, term)


def training_curves(histories: dict[str, list[dict[str, pd.Series]]], title: str) -> Figure | None:
    """One panel per logged term, one line per method (mean over seeds).

    Args:
        histories: method -> one DVCLive history per seed (term -> Series indexed by step).
        title: figure title.

    Returns:
        The figure, or None when no history was found.
    """
    terms = sorted({t for runs in histories.values() for h in runs for t in h}, key=_term_key)
    if not terms:
        return None
    ncols = min(3, len(terms))
    nrows = math.ceil(len(terms) / ncols)
    fig = Figure(figsize=(4.0 * ncols, 2.8 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, term in zip(axes, terms):
        for method, runs in histories.items():
            series = [h[term] for h in runs if term in h and len(h[term])]
            if series:
                curve = _mean_curve(series)
                label = f"{method_label(method)} (n={len(series)})"
                ax.plot(curve.index, curve.to_numpy(), color=method_color(method), label=label, linewidth=1.2)
        ax.set_title(term, fontsize=9)
        if term.endswith("grad_ratio"):  # attention / task gradient norms: spans decades when a term swamps
            ax.set_yscale("log")
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes[len(terms) :]:
        ax.set_axis_off()
    axes[0].legend(fontsize=7)
    fig.suptitle(title)
    return fig


def split_alignment(arrays: dict[str, np.ndarray], path: Path) -> dict[str, tuple[int, np.ndarray, np.ndarray]]:
    """Pick one representative (the deepest) student layer per kind that has both phases.

    Args:
        arrays: ``"early|late/<kind>/<layer>"`` -> (Ht, Hs) alignment matrices.
        path: the npz file, for messages.

    Returns:
        kind -> (student layer, early (Ht, Hs), late (Ht, Hs)), kinds in KIND_ORDER.
    """
    found: dict[tuple[str, int], dict[str, np.ndarray]] = {}
    for key, arr in arrays.items():
        phase, _, rest = key.partition("/")
        kind, _, layer = rest.rpartition("/")
        if phase not in ("early", "late") or not kind or not layer.isdigit() or arr.ndim != 2:
            raise DataError(f"{path}: array '{key}' is not 'early|late/<kind>/<layer>' of shape (Ht, Hs)")
        found.setdefault((kind, int(layer)), {})[phase] = arr
    out: dict[str, tuple[int, np.ndarray, np.ndarray]] = {}
    for (kind, layer), phases in sorted(found.items(), key=lambda kv: (order_key(KIND_ORDER, kv[0][0]), kv[0][1])):
        if len(phases) == 2:
            out[kind] = (layer, phases["early"], phases["late"])
    return out


def alignment_heatmaps(chosen: dict[str, tuple[int, np.ndarray, np.ndarray]], title: str) -> Figure | None:
    """Teacher heads × student heads alignment weights, early (left) and late (right), one row per kind."""
    if not chosen:
        return None
    vmax = max(float(max(e.max(), l.max())) for _, e, l in chosen.values())
    fig = Figure(figsize=(7.0, 2.8 * len(chosen)), layout="constrained")
    axes = fig.subplots(len(chosen), 2, squeeze=False)
    image = None
    for row, (kind, (layer, early, late)) in enumerate(chosen.items()):
        for col, (phase, arr) in enumerate((("early", early), ("late", late))):
            ax = axes[row, col]
            image = ax.imshow(arr, vmin=0.0, vmax=vmax, cmap="viridis", aspect="auto")  # (Ht, Hs)
            ax.set_title(f"{kind} layer {layer} · {phase}", fontsize=9)
            ax.set_xlabel("student head", fontsize=8)
            ax.set_ylabel("teacher head", fontsize=8)
            ax.set_xticks(range(arr.shape[1]))
            ax.set_yticks(range(arr.shape[0]))
            ax.tick_params(labelsize=7)
    fig.colorbar(image, ax=axes, shrink=0.8, label="alignment weight")
    fig.suptitle(title)
    return fig


def _layers(arrays: dict[str, np.ndarray], kind: str) -> list[int]:
    return sorted(int(k.rpartition("/")[2]) for k in arrays if k.rpartition("/")[0] == kind)


def tile_heads(maps: np.ndarray) -> np.ndarray:
    """Place the heads side by side with a one-column NaN gap: (H, Q, K) -> (Q, H * (K + 1) - 1)."""
    h, q, k = maps.shape
    gap = np.full((h, q, 1), np.nan)
    tiled = np.concatenate([maps, gap], axis=2)  # (H, Q, K + 1)
    return tiled.transpose(1, 0, 2).reshape(q, h * (k + 1))[:, :-1]  # (Q, H * (K + 1) - 1)


def attention_grid(models: list[tuple[str, dict[str, np.ndarray]]], title: str) -> Figure | None:
    """Attention maps of one example: one row per model (its heads side by side), one kind, the deepest layer.

    Args:
        models: (label, arrays) with arrays ``"<kind>/<layer>"`` -> (H, Q, K) and optional ``tokens_q``/``tokens_k``.
        title: figure title.

    Returns:
        The figure (one Axes per model), or None when no model has maps.
    """
    models = [(label, arrays) for label, arrays in models if arrays]
    if not models:
        return None
    kinds_per_model = [{k.rpartition("/")[0] for k in a if not k.startswith("tokens_")} for _, a in models]
    common = set.intersection(*kinds_per_model) or kinds_per_model[0]
    kind = min(common, key=lambda k: order_key(KIND_ORDER, k))
    picked = [(label, a, _layers(a, kind)[-1]) for (label, a), kinds in zip(models, kinds_per_model) if kind in kinds]
    widths = []
    for label, arrays, layer in picked:
        maps = arrays[f"{kind}/{layer}"]
        if maps.ndim != 3:
            raise DataError(f"attention example '{kind}/{layer}' of {label} has shape {maps.shape}, expected (H, Q, K)")
        widths.append(maps.shape[0] * (maps.shape[2] + 1))
    scale = 9.0 / max(widths)
    fig = Figure(figsize=(10.0, sum(0.6 + scale * a[f"{kind}/{ly}"].shape[1] for _, a, ly in picked)))
    fig.set_layout_engine("constrained")
    axes = fig.subplots(len(picked), 1, squeeze=False)[:, 0]
    cmap = colormaps["magma"].with_extremes(bad="white")
    for ax, (label, arrays, layer) in zip(axes, picked):
        maps = arrays[f"{kind}/{layer}"]  # (H, Q, K)
        h, q, k = maps.shape
        ax.imshow(tile_heads(maps), vmin=0.0, cmap=cmap, aspect="equal", interpolation="nearest")
        ax.set_xlim(-0.5, max(widths) - 1.5)  # same scale for every row: fewer heads leave blank space
        ax.set_xticks([i * (k + 1) + (k - 1) / 2 for i in range(h)], [f"head {i}" for i in range(h)], fontsize=7)
        ax.set_ylabel(f"{label}\nlayer {layer}", fontsize=8)
        tokens_q = arrays.get("tokens_q")
        if tokens_q is not None and len(tokens_q) == q and q <= MAX_TOKEN_LABELS:
            ax.set_yticks(range(q), [str(t) for t in tokens_q], fontsize=6)
        else:
            ax.set_yticks([])
        for side in ("top", "right", "bottom", "left"):
            ax.spines[side].set_visible(False)
    fig.suptitle(f"{title} · {kind} (rows: queries, columns: keys per head)")
    return fig


def delta_by_head_ratio(groups: list[Group], baseline: str) -> Figure | None:
    """Per (family, task), each method's paired headline difference to the ``baseline`` student against Hs/Ht,
    with its 95% t-interval over seeds; None when no setup has a student of any other method."""
    from amad_suite.reporting.stats import paired

    def by_seed(g: Group) -> dict[int, float]:
        return {r.seed: r.metrics[r.headline] for r in g.runs if r.seed is not None and r.metrics.get(r.headline)}

    panels = []
    for family, task in dict.fromkeys((g.family, g.task) for g in groups if g.role == "student"):
        mine = [g for g in groups if (g.family, g.task) == (family, task)]
        teacher = next((g.heads() for g in mine if g.role == "teacher"), None)
        base = {g.heads(): by_seed(g) for g in mine if g.method == baseline and g.role == "student"}
        lines: dict[str, list[tuple[float, float, float, float]]] = {}
        for g in mine:
            if g.role != "student" or g.method == baseline or g.heads() not in base or not teacher:
                continue
            diff = paired(by_seed(g), base[g.heads()])
            if diff is not None:
                low = diff.mean if diff.ci_low is None else diff.ci_low
                high = diff.mean if diff.ci_high is None else diff.ci_high
                lines.setdefault(g.method, []).append((g.heads() / teacher, diff.mean, low, high))
        if lines:
            panels.append((family, task, mine[0].headline, lines))
    if not panels:
        return None
    fig = Figure(figsize=(4.6 * len(panels), 3.4), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False).ravel()
    for ax, (family, task, metric, lines) in zip(axes, panels):
        for method, points in sorted(lines.items()):
            points.sort()
            x = [p[0] for p in points]
            y = [p[1] for p in points]
            err = [[p[1] - p[2] for p in points], [p[3] - p[1] for p in points]]
            ax.errorbar(x, y, yerr=err, marker="o", capsize=3, color=method_color(method), label=method_label(method))
        ax.axhline(0, color="grey", linewidth=0.8)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("student heads / teacher heads", fontsize=8)
        ax.set_ylabel(f"Δ {metric} vs {method_label(baseline)}", fontsize=8)
        ax.set_title(f"{family_label(family)} · {task}", fontsize=9)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7)
    return fig
