"""The hand-filled reference file of published (paper) numbers: load and validate it.

Layout: ``{task: {family: {method_or_teacher: {metric: value | null}}}}``. Null means "not filled in"; only
non-null values reach the tables. Nothing here ever supplies a number of its own.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from amad.errors import ConfigError, DataError
from amad_suite.reporting.schema import FAMILIES, METHOD_ORDER, TASK_METRICS, TASKS, TEACHER

# task -> family -> method -> metric -> value (non-null values only)
Published = dict[str, dict[str, dict[str, dict[str, float]]]]


def _check_key(key: Any, allowed: Iterable[str], what: str, where: str, path: Path) -> str:
    allowed = list(allowed)
    if not isinstance(key, str) or key not in allowed:
        at = f" under '{where}'" if where else ""
        raise ConfigError(f"{path}: unknown {what} '{key}'{at}; allowed: {', '.join(allowed)} (fix the key)")
    return key


def _mapping(value: Any, where: str, path: Path) -> Mapping:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{path}: '{where}' must be a mapping or null, got {type(value).__name__}; fix the file")
    return value


def validate_published(
    data: Any,
    path: Path,
    extra_methods: Iterable[str] = (),
    extra_metrics: Mapping[str, Iterable[str]] | None = None,
) -> Published:
    """Check names and values of a parsed published file; keep the non-null values.

    Args:
        data: the parsed YAML.
        path: the file, for messages.
        extra_methods: method names allowed besides the teacher and METHOD_ORDER (e.g. ones seen in eval files).
        extra_metrics: task -> metric names allowed besides TASK_METRICS[task].

    Raises:
        ConfigError: an unknown task, family, method or metric name, or a value that is not a number or null.
    """
    extra_metrics = extra_metrics or {}
    methods = [TEACHER, *METHOD_ORDER, *sorted(set(extra_methods) - {TEACHER, *METHOD_ORDER})]
    out: Published = {}
    for task, families in _mapping(data, "top level", path).items():
        _check_key(task, TASKS, "task", "", path)
        metrics = list(TASK_METRICS[task]) + sorted(set(extra_metrics.get(task, ())) - set(TASK_METRICS[task]))
        for family, rows in _mapping(families, task, path).items():
            _check_key(family, FAMILIES, "family", task, path)
            for method, values in _mapping(rows, f"{task}.{family}", path).items():
                _check_key(method, methods, "method", f"{task}.{family}", path)
                where = f"{task}.{family}.{method}"
                for metric, value in _mapping(values, where, path).items():
                    _check_key(metric, metrics, "metric", where, path)
                    if value is None:
                        continue
                    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                        raise ConfigError(f"{path}: {where}.{metric} is {value!r}; write a number or null")
                    out.setdefault(task, {}).setdefault(family, {}).setdefault(method, {})[metric] = float(value)
    return out


def load_published(
    path: Path,
    extra_methods: Iterable[str] = (),
    extra_metrics: Mapping[str, Iterable[str]] | None = None,
) -> Published:
    """Read and validate the published-numbers YAML file (see :func:`validate_published`).

    Raises:
        DataError: the file is missing or is not valid YAML.
        ConfigError: unknown names or non-numeric values.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"published numbers file {path} not found; restore reports/published.yaml or omit it")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        first = str(exc).replace("\n", " ")
        raise DataError(f"{path}: not valid YAML ({first}); fix the file") from exc
    return validate_published(data, path, extra_methods, extra_metrics)


def published_value(published: Published, task: str, family: str, method: str, metric: str) -> float | None:
    """The published value for one table cell, or None when not filled in."""
    return published.get(task, {}).get(family, {}).get(method, {}).get(metric)


def published_metrics(published: Published, task: str) -> set[str]:
    """Metrics of ``task`` that have at least one published value."""
    return {m for rows in published.get(task, {}).values() for vals in rows.values() for m in vals}
