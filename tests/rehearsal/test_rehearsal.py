"""The whole paper run in miniature over loopback (`make rehearsal`): see amad_suite.rehearsal.run for the checks."""

from __future__ import annotations

import pytest

from amad_suite.rehearsal.run import DATA_STAGES, rehearse

pytestmark = pytest.mark.slow


def test_rehearsal_of_the_paper_run(tmp_path, capsys):
    outcome = rehearse(tmp_path, log=lambda message: None)
    assert outcome.first[:2] == ["code", "download"] and "report" in outcome.first  # code: the digests stages use
    assert {s.split("@")[0] for s in outcome.first} >= {
        "download", "extract_features", "teacher", "teacher_budget", "evaluate_teacher", "distill", "evaluate", "report"
    }  # fmt: skip
    assert all(stage.startswith(DATA_STAGES) for stage in outcome.second)
    with capsys.disabled():
        times = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in outcome.seconds.items())
        print(f"\nrehearsal: {len(outcome.first)} stages; after a file placed by hand: {outcome.second}; {times}")
