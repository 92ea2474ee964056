"""Gradient balance: calibrated ``weight: auto``, the logged gradient ratio and clip scale, finiteness checks."""

import json

import pytest
import torch
from test_distill_step import EXAMPLES, _pair

from amad.errors import CaptureError, TrainingError
from amad.testing import FakeFeatures
from amad.training.balance import calibrate, grad_norm, gradient_ratio
from amad.training.step import distill_step, plan_capture
from amad.training.terms import parse_method
from amad_suite.config import TrainConfig
from amad_suite.training.loop import check_finite, train

KINDS = ("encoder_self", "decoder_self", "cross")


def _params(model):
    return [p for p in model.parameters() if p.requires_grad]


@pytest.mark.parametrize("term", ["amad_kl", "one_to_one_kl"])
@pytest.mark.parametrize("ratio", [0.5, 2.0])
def test_calibrated_weight_gives_the_asked_gradient_ratio(term, ratio):
    teacher, student, batch = _pair()
    terms = parse_method("m", {"task": 1.0, term: {"weight": "auto", "ratio": ratio}})
    plan = plan_capture(student, teacher, KINDS, "uniform")
    calibrated, weights = calibrate(student, teacher, batch, terms, plan)
    assert set(weights) == {term} and weights[term] > 0 and calibrated[1].weight == weights[term]
    result = distill_step(student, teacher, batch, calibrated, plan)
    task = grad_norm(result.parts["task"], _params(student))
    weighted = grad_norm(weights[term] * result.parts[term], _params(student))
    assert weighted == pytest.approx(ratio * task, rel=1e-4)
    assert gradient_ratio(student, result, calibrated) == pytest.approx(ratio, rel=1e-4)


def test_calibration_leaves_the_rng_and_the_gradients_alone():
    teacher, student, batch = _pair()
    terms = parse_method("m", {"task": 1.0, "amad_kl": {"weight": "auto"}})
    plan = plan_capture(student, teacher, KINDS, "uniform")
    torch.manual_seed(7)
    calibrate(student, teacher, batch, terms, plan)
    after = torch.rand(3)
    torch.manual_seed(7)
    assert torch.equal(after, torch.rand(3))  # runs of different methods with one seed stay paired
    assert all(p.grad is None for p in student.parameters())


def test_without_attention_terms_there_is_no_ratio():
    teacher, student, batch = _pair()
    terms = parse_method("m", {"task": 1.0, "logit_kd": 1.0})
    result = distill_step(student, teacher, batch, terms, plan_capture(student, teacher, (), "uniform"))
    assert gradient_ratio(student, result, terms) is None


class NaNFeatures(FakeFeatures):
    def get(self, key):
        feats, boxes = super().get(key)
        return feats * float("nan"), boxes


def _train(tmp_path, method, visual=None, **cfg):
    teacher, student, _ = _pair()
    teacher.requires_grad_(False)
    terms = parse_method("m", method)
    plan = plan_capture(student, teacher, KINDS, "uniform")
    config = TrainConfig(**{"epochs": 10, "batch_size": 2, "lr": 1e-3, "max_steps": 4, "log_every": 2} | cfg)
    return train(
        student,
        EXAMPLES,
        visual or FakeFeatures(4, 16),
        config,
        terms=terms,
        seed=0,
        work_dir=tmp_path,
        run_fingerprint="test",
        teacher=teacher,
        plan=plan,
        progress=False,
    )


def _history(tmp_path, name):
    rows = (tmp_path / "dvclive" / "plots" / "metrics" / "train" / f"{name}.tsv").read_text().splitlines()[1:]
    return [float(r.split("\t")[-1]) for r in rows]


def test_loop_logs_the_gradient_ratio_and_clip_scale_and_records_weights(tmp_path):
    result = _train(tmp_path, {"task": 1.0, "amad_kl": {"weight": "auto", "ratio": 1.0}}, clip=1e-3)
    assert set(result.weights) == {"amad_kl"} and result.weights["amad_kl"] > 0
    ratios, scales = _history(tmp_path, "grad_ratio"), _history(tmp_path, "clip_scale")
    assert len(ratios) == len(scales) == 2 and all(r > 0 for r in ratios)
    assert all(0 < s < 1 for s in scales)  # clip 1e-3 always bites


def test_resume_keeps_the_calibrated_weight(tmp_path, monkeypatch):
    first = _train(tmp_path / "a", {"task": 1.0, "amad_kl": {"weight": "auto"}}, max_steps=4, checkpoint_every=2)
    from amad_suite.training import checkpoint as ckpt

    state = torch.load(tmp_path / "a" / "checkpoint" / ckpt.STATE_FILE, weights_only=False)
    assert state["weights"] == first.weights


@pytest.mark.parametrize(
    ("visual", "cfg", "start"),
    [
        (NaNFeatures(4, 16), {}, "captured encoder_self layer 0 attention holds NaN or inf: a non-finite input"),
        (None, {"lr": 1e12, "max_steps": 60, "clip": 0.0}, "step "),
    ],
)
def test_a_non_finite_step_stops_with_one_line_and_no_update(tmp_path, visual, cfg, start):
    with pytest.raises((TrainingError, CaptureError)) as err:
        _train(tmp_path, {"task": 1.0, "amad_kl": 1.0}, visual=visual, **cfg)
    message = str(err.value)
    assert "\n" not in message and message.startswith(start)
    assert not (tmp_path / "model").exists()


def test_nan_features_without_attention_terms_stop_at_step_one(tmp_path):
    with pytest.raises(TrainingError, match=r"^step 1: task is nan \(a non-finite input"):
        _train(tmp_path, {"task": 1.0, "logit_kd": 1.0}, visual=NaNFeatures(4, 16))


def test_check_finite_names_the_first_bad_value_and_the_kept_checkpoint():
    with pytest.raises(TrainingError, match=r"step 7: task is nan \(a non-finite input.*checkpoint of step 5 is kept"):
        check_finite(7, ["task", "loss", "grad_norm"], torch.tensor([float("nan"), 1.0, 2.0]), 5)
    check_finite(7, ["task"], torch.tensor([1.0]), 0)  # finite: nothing happens


def test_run_info_like_json_of_terms_is_serialisable():
    from amad.training.terms import describe

    terms = parse_method("m", {"task": 1.0, "amad_kl": {"weight": "auto", "tau": 0.1}})
    assert json.loads(json.dumps(describe(terms)))[1] == {
        "name": "amad_kl",
        "weight": 1.0,
        "options": {"tau": 0.1},
        "auto": True,
        "ratio": 1.0,
    }
