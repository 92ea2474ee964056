"""results.md quotes the committed head-ratio study (issue 15 §5) under its own heading, and only when it exists."""

from __future__ import annotations

from amad_suite.reporting.summary import results_index, study_section


def test_no_study_report_no_section(tmp_path):
    (tmp_path / "study").mkdir()
    (tmp_path / "study" / "README.md").write_text("placeholder\n")
    assert study_section(tmp_path) == ""


def test_the_study_claims_and_qualification_are_quoted_before_the_tables(tmp_path):
    study = tmp_path / "study"
    (study / "tables").mkdir(parents=True)
    (study / "claims.md").write_text("| claim | verdict |\n| C5 | inconclusive |\n")
    (study / "tables" / "qualification.md").write_text("| family | status |\n| blip | qualifies |\n")
    section = study_section(tmp_path)
    assert section.startswith("## Head-ratio study")
    assert "| C5 | inconclusive |" in section and "| blip | qualifies |" in section
    text = results_index([], [("tables/caption.md", "| caption |")], [], False, "logit", [], section)
    assert text.index("## Head-ratio study") < text.index("## Tables")
    assert "## Head-ratio study" not in results_index([], [], [], False, "logit", [], "")
