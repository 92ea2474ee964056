"""Read the pipeline's outputs: eval JSON files, DVCLive step histories and the attention npz files."""

from __future__ import annotations

import json
import math
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from amad.errors import DataError
from amad_suite.reporting.schema import REFERENCE

ROLES = ("teacher", "student")  # the roles of eval files; REFERENCE runs come from a teacher's "references"


@dataclass(frozen=True)
class EvalRun:
    """One evaluated model (one ``results/eval/<run>.json``)."""

    run: str
    role: str
    family: str
    task: str
    method: str
    seed: int | None
    preset: str
    metrics: dict[str, float | None]
    headline: str
    cost: dict[str, float] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)
    distill: dict[str, Any] = field(default_factory=dict)
    git_sha: str | None = None
    signature: str | None = None
    path: Path | None = None
    references: dict[str, dict[str, float | None]] = field(default_factory=dict)

    def run_dir(self, results_dir: Path) -> Path:
        """The training folder: ``distill/<run>`` for students, ``teachers/<family>-<task>`` for teachers."""
        if self.role == "teacher":
            return Path(results_dir) / "teachers" / f"{self.family}-{self.task}"
        return Path(results_dir) / "distill" / self.run


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _field(data: dict, name: str, kind: type | tuple[type, ...], path: Path, optional: bool = False) -> Any:
    value = data.get(name)
    if value is None and optional:
        return None
    if not isinstance(value, kind) or isinstance(value, bool):
        raise DataError(f"{path}: field '{name}' is missing or has the wrong type; re-run the evaluate stage for it")
    return value


def _metrics(value: Any, path: Path, what: str) -> dict[str, float | None]:
    if not isinstance(value, dict):
        raise DataError(f"{path}: field '{what}' must be an object; re-run the evaluate stage for it")
    for name, number in value.items():
        if number is not None and not _is_number(number):
            raise DataError(f"{path}: metric '{name}' is {number!r}, not a number or null; re-run the evaluate stage")
    return {str(k): (None if v is None else float(v)) for k, v in value.items()}


def parse_eval(data: Any, path: Path) -> EvalRun:
    """Validate one eval JSON object and turn it into an EvalRun (DataError naming ``path`` when malformed)."""
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a JSON object; re-run the evaluate stage for it")
    role = _field(data, "role", str, path)
    if role not in ROLES:
        raise DataError(f"{path}: role '{role}' is not one of {ROLES}; re-run the evaluate stage for it")
    metrics = _metrics(_field(data, "metrics", dict, path), path, "metrics")
    headline = _field(data, "headline", str, path)
    if headline not in metrics:
        raise DataError(f"{path}: headline metric '{headline}' is not in 'metrics'; re-run the evaluate stage")
    references = data.get("references") or {}
    if not isinstance(references, dict):
        raise DataError(f"{path}: field 'references' must be an object; re-run the evaluate stage for it")
    references = {str(k): _metrics(v, path, f"references.{k}") for k, v in references.items()}
    for name, values in references.items():
        if headline not in values:
            raise DataError(f"{path}: reference '{name}' has no '{headline}'; re-run the evaluate stage for it")
    seed = _field(data, "seed", int, path, optional=True)
    cost = data.get("cost") or {}
    if not isinstance(cost, dict) or any(not _is_number(v) for v in cost.values()):
        raise DataError(f"{path}: field 'cost' must map names to numbers; re-run the evaluate stage for it")
    model = data.get("model") or {}
    distill = data.get("distill") or {}
    if not isinstance(model, dict) or not isinstance(distill, dict):
        raise DataError(f"{path}: fields 'model' and 'distill' must be objects; re-run the evaluate stage for it")
    return EvalRun(
        run=_field(data, "run", str, path),
        role=role,
        family=_field(data, "family", str, path),
        task=_field(data, "task", str, path),
        method="teacher" if role == "teacher" else _field(data, "method", str, path),
        seed=seed,
        preset=_field(data, "preset", str, path, optional=True) or "unknown",
        metrics=metrics,
        headline=headline,
        cost={k: float(v) for k, v in cost.items()},
        model=model,
        distill=distill,
        git_sha=_field(data, "git_sha", str, path, optional=True),
        signature=_field(data, "signature", str, path, optional=True),
        path=path,
        references=references,
    )


def reference_runs(runs: list[EvalRun]) -> list[EvalRun]:
    """One REFERENCE run per baseline a teacher's eval file carries (e.g. the VQA question prior).

    A reference is not a trained model: it has no cost, head count, seed or training folder.
    """
    return [
        EvalRun(
            run=f"{r.family}-{r.task}-{name}",
            role=REFERENCE,
            family=r.family,
            task=r.task,
            method=name,
            seed=None,
            preset=r.preset,
            metrics=values,
            headline=r.headline,
            git_sha=r.git_sha,
            path=r.path,
        )
        for r in runs
        for name, values in r.references.items()
    ]


def load_eval_runs(results_dir: Path) -> list[EvalRun]:
    """Load every ``<results_dir>/eval/*.json``, sorted by file name.

    Raises:
        DataError: no eval files (run the evaluate stage), or a file that is not valid eval JSON.
    """
    eval_dir = Path(results_dir) / "eval"
    paths = sorted(eval_dir.glob("*.json")) if eval_dir.is_dir() else []
    if not paths:
        raise DataError(f"no evaluation results in {eval_dir}; run the evaluate stage first (dvc repro evaluate)")
    runs = []
    for path in paths:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise DataError(f"{path}: not valid JSON ({msg}); re-run the evaluate stage for it") from exc
        runs.append(parse_eval(data, path))
    return runs


def load_history(dvclive_dir: Path) -> dict[str, pd.Series]:
    """Read DVCLive step histories under ``<dvclive_dir>/plots/metrics``.

    Returns:
        term (e.g. ``"train/loss"``) -> float Series indexed by step. Empty when the folder is absent.
    """
    root = Path(dvclive_dir) / "plots" / "metrics"
    history: dict[str, pd.Series] = {}
    if not root.is_dir():
        return history
    for path in sorted(root.rglob("*.tsv")):
        term = path.relative_to(root).with_suffix("").as_posix()
        try:
            frame = pd.read_csv(path, sep="\t")
            if "step" not in frame.columns or len(frame.columns) < 2:
                raise ValueError("expected columns 'step' and a value column")
            value_col = next(c for c in frame.columns if c not in ("step", "timestamp"))
            series = pd.Series(pd.to_numeric(frame[value_col]).to_numpy(float), index=frame["step"].astype(int))
        except (ValueError, StopIteration, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            raise DataError(f"{path}: not a DVCLive step history ({exc}); re-run the stage that wrote it") from exc
        history[term] = series
    return history


def load_npz(path: Path) -> dict[str, np.ndarray]:
    """Load every array of an ``.npz`` file (empty dict when the file is absent)."""
    path = Path(path)
    if not path.is_file():
        return {}
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{path}: unreadable npz ({reason}); re-run the stage that wrote it") from None
