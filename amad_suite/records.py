"""The eval record: one typed object that the evaluate stage writes and the report stage reads.

``results/eval/<run>.json`` holds ``EvalRecord.to_json()``; :func:`parse_record` turns such a file back into an
``EvalRecord`` and raises a one-line DataError naming the file when it is malformed.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from amad.errors import DataError

ROLES = ("teacher", "student")  # the roles of eval files; REFERENCE runs come from a teacher's "references"


@dataclass(frozen=True)
class EvalRecord:
    """One evaluated model: what the evaluate stage writes (``to_json``) and the report stage reads
    (``from_json``), one ``results/eval/<run>.json`` each."""

    run: str
    role: str
    family: str
    task: str
    method: str
    seed: int | None
    preset: str
    metrics: dict[str, float | None]
    headline: str
    cost: dict[str, float | str] = field(default_factory=dict)  # numbers, and "device": where latency was measured
    model: dict[str, Any] = field(default_factory=dict)
    inference: dict[str, Any] = field(default_factory=dict)
    coverage: dict[str, list[float]] = field(default_factory=dict)  # "<kind>/<s>/<t>" -> per teacher head KL
    variant: str = ""  # the student's head-ratio matrix item, e.g. "h4" or "hsize": its folder's suffix
    git_sha: str | None = None
    signature: str | None = None
    path: Path | None = None
    references: dict[str, dict[str, float | None]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The JSON object of the eval file (without the reader-side ``path``)."""
        data = dataclasses.asdict(self)
        data.pop("path")
        return data

    def run_dir(self, results_dir: Path) -> Path:
        """The training folder: ``distill/<family>-<task>-<method>/s<seed>`` for students,
        ``teachers/<family>-<task>`` for teachers."""
        if self.role == "teacher":
            return Path(results_dir) / "teachers" / f"{self.family}-{self.task}"
        suffix = f"-{self.variant}" if self.variant else ""
        return Path(results_dir) / "distill" / f"{self.family}-{self.task}-{self.method}{suffix}" / f"s{self.seed}"


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


def parse_record(data: Any, path: Path) -> EvalRecord:
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
    if not isinstance(cost, dict) or any(not _is_number(v) for k, v in cost.items() if k != "device"):
        raise DataError(f"{path}: field 'cost' must map names to numbers; re-run the evaluate stage for it")
    if not isinstance(cost.get("device", ""), str):
        raise DataError(f"{path}: field 'cost.device' must be a string; re-run the evaluate stage for it")
    model = data.get("model") or {}
    inference = data.get("inference") or {}
    if not isinstance(model, dict) or not isinstance(inference, dict):
        raise DataError(f"{path}: fields 'model' and 'inference' must be objects; re-run the evaluate stage for it")
    coverage = data.get("coverage") or {}
    if not isinstance(coverage, dict) or any(
        not isinstance(v, list) or not all(_is_number(x) for x in v) for v in coverage.values()
    ):
        raise DataError(f"{path}: field 'coverage' must map layer pairs to lists of numbers; re-run the evaluate stage")
    return EvalRecord(
        run=_field(data, "run", str, path),
        role=role,
        family=_field(data, "family", str, path),
        task=_field(data, "task", str, path),
        method="teacher" if role == "teacher" else _field(data, "method", str, path),
        seed=seed,
        preset=_field(data, "preset", str, path, optional=True) or "unknown",
        metrics=metrics,
        headline=headline,
        cost={k: v if k == "device" else float(v) for k, v in cost.items()},
        model=model,
        inference=inference,
        coverage={str(k): [float(x) for x in v] for k, v in coverage.items()},
        variant=_field(data, "variant", str, path, optional=True) or "",
        git_sha=_field(data, "git_sha", str, path, optional=True),
        signature=_field(data, "signature", str, path, optional=True),
        path=path,
        references=references,
    )
