"""Shared fixture: one report built from the standard synthetic results tree."""

from __future__ import annotations

import pytest
from report_fixtures import make_results

from amad_suite.reporting import build_report


@pytest.fixture(scope="session")
def report(tmp_path_factory):
    """One full report built from the standard synthetic tree (built once per session: figures take seconds)."""
    root = tmp_path_factory.mktemp("report")
    results = make_results(root)
    written = build_report(results, root / "reports")
    return root / "reports", written
