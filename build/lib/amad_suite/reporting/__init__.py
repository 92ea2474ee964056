"""Report stage library: paper-style tables, cost table, figures, summary metrics and the results index.

Entry point: :func:`build_report`. Inputs are the files the evaluate and distill stages write under ``results/``;
outputs go under ``reports/`` and are generated (only ``reports/published.yaml`` is edited by hand).
"""

from amad_suite.reporting.build import build_report
from amad_suite.reporting.collect import EvalRecord, load_eval_runs, load_history, load_npz
from amad_suite.reporting.published import load_published, validate_published

__all__ = [
    "EvalRecord",
    "build_report",
    "load_eval_runs",
    "load_history",
    "load_npz",
    "load_published",
    "validate_published",
]
