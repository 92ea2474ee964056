"""The training loop in-process: it distils with attention terms and checks the captured rows on its first step only."""

import pytest
import torch
from test_distill_step import EXAMPLES, _pair

import amad.capture.base as capture_base
from amad.testing import FakeFeatures
from amad.training.step import plan_capture
from amad.training.terms import parse_method
from amad_suite.config import TrainConfig
from amad_suite.training.loop import train


@pytest.fixture
def row_checks(monkeypatch):
    calls = []
    real = capture_base.check_row_sums

    def counting(probs):
        calls.append(len(probs))
        real(probs)

    monkeypatch.setattr(capture_base, "check_row_sums", counting)
    return calls


def test_rows_are_checked_on_the_first_step_only(tmp_path, row_checks):
    teacher, student, _ = _pair()
    teacher.requires_grad_(False)
    terms = parse_method("amad", {"task": 1.0, "logit_kd": 1.0, "amad_kl": 1.0})
    plan = plan_capture(student, teacher, ("encoder_self", "cross"), "uniform")
    cfg = TrainConfig(epochs=10, batch_size=2, lr=1e-3, max_steps=4, checkpoint_every=100, log_every=2)
    result = train(
        student,
        EXAMPLES,
        FakeFeatures(4, 16),
        cfg,
        terms=terms,
        seed=0,
        work_dir=tmp_path,
        run_fingerprint="test",
        teacher=teacher,
        plan=plan,
        progress=False,
    )
    assert result.steps == 4 and all(torch.isfinite(torch.tensor(v)) for v in result.last_parts.values())
    assert row_checks == [2, 2]  # step 1: the student's and the teacher's two maps; later steps skip the check
    assert result.alignment  # alignment snapshots were still taken


def test_checkpoint_state_round_trip_and_finished_note(tmp_path):
    from amad_suite.training import checkpoint as ckpt

    ckpt.save_state(tmp_path, {"fingerprint": "abc", "step": 3})
    assert ckpt.load_state(tmp_path, "abc")["step"] == 3
    assert ckpt.load_state(tmp_path, "other") is None  # another run's state is ignored
    ckpt.clear_state(tmp_path, steps=6)
    assert not (tmp_path / ckpt.STATE_FILE).exists() and ckpt.load_state(tmp_path, "abc") is None
    assert '"finished_steps": 6' in (tmp_path / ckpt.DONE_FILE).read_text()  # the DVC output is never empty
    assert [p.name for p in tmp_path.iterdir()] == [ckpt.DONE_FILE]  # no temporary file left behind
