"""Read the pipeline's outputs: eval JSON files, DVCLive step histories and the attention npz files."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from amad.errors import DataError
from amad_suite.records import EvalRecord, parse_record
from amad_suite.reporting.schema import REFERENCE


def reference_runs(runs: list[EvalRecord]) -> list[EvalRecord]:
    """One REFERENCE run per baseline a teacher's eval file carries (e.g. the VQA question prior).

    A reference is not a trained model: it has no cost, head count, seed or training folder.
    """
    return [
        EvalRecord(
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


def load_eval_runs(results_dir: Path) -> list[EvalRecord]:
    """Load every ``<results_dir>/eval/*.json``, sorted by file name.

    Raises:
        DataError: no eval files (run the evaluate stage), or a file that is not valid eval JSON.
    """
    eval_dir = Path(results_dir) / "eval"
    paths = sorted(eval_dir.rglob("*.json")) if eval_dir.is_dir() else []  # <setup>-<method>/s<seed>.json
    if not paths:
        raise DataError(f"no evaluation results in {eval_dir}; run the evaluate stage first (dvc repro evaluate)")
    runs = []
    for path in paths:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise DataError(f"{path}: not valid JSON ({msg}); re-run the evaluate stage for it") from exc
        runs.append(parse_record(data, path))
    return runs


def teacher_leaks(results_dir: Path, setups: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """(family, task) -> why its teacher's starting checkpoint saw test images (``load_report.saw_test_split`` of
    ``teachers/<family>-<task>/run_info.json``), for the setups where it did. A missing or unreadable run_info is
    no leak: the table cannot mark what was never recorded."""
    out = {}
    for family, task in setups:
        path = Path(results_dir) / "teachers" / f"{family}-{task}" / "run_info.json"
        try:
            reason = json.loads(path.read_text(encoding="utf-8")).get("load_report", {}).get("saw_test_split")
        except (OSError, ValueError, AttributeError):
            continue
        if reason:
            out[(family, task)] = str(reason)
    return out


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
