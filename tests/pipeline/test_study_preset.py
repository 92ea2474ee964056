"""The study preset (issue 15 §5): mini's data, teachers and training, with students that differ from their teacher
only in the head count."""

from amad.models.sizes import resolve_size
from amad_suite.pipeline import params as P
from amad_suite.preset import compose


def _diff(a, b, where=""):
    if isinstance(a, dict) and isinstance(b, dict):
        for key in set(a) | set(b):
            yield from _diff(a.get(key), b.get(key), f"{where}.{key}" if where else key)
    elif a != b:
        yield where


def test_study_changes_only_what_it_varies():
    study, _ = compose("study")
    mini, _ = compose("mini")
    changed = set(_diff(study, mini))
    allowed = ("preset", "compute.workers", "suite.", "student.setups.", "report.claims.amad")
    assert changed and all(key.startswith(allowed) for key in changed), sorted(changed)
    assert study["data"] == mini["data"] and study["teacher"] == mini["teacher"] and study["distill"] == mini["distill"]


def test_study_students_are_their_teachers_but_for_the_heads():
    study, _ = compose("study")
    cfg = P.validate_all(study)
    assert [P.student_heads(h) for h in cfg.student_heads] == [8, 4, 2] and len(cfg.seeds) >= 3
    for setup in cfg.setups:
        teacher = resolve_size(study["teacher"]["setups"][setup]["size"])
        student = resolve_size(study["student"]["setups"][setup]["size"])
        assert student == teacher, setup
    assert {"logit", "one_to_one", "head_mean", "amad", "amad_sharp", "shd", "none"} <= set(cfg.methods)
    assert study["report"]["claims"]["amad"] == ["amad", "amad_sharp"]
