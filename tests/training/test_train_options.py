"""Training options of the paper preset in the loop: model selection on validation data (and its resume), label
smoothing, DataLoader workers, and the TrainConfig fields themselves."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from test_distill_step import EXAMPLES, _pair

from amad.errors import ConfigError, DataError
from amad.training.terms import parse_method
from amad_suite.config import AUGMENT_MODES, TARGET_MODES, TrainConfig
from amad_suite.training.loop import train
from amad_suite.training.selection import evaluation_due

FEATURES_DIM = (4, 16)
EXAMPLES4 = EXAMPLES + [dataclasses.replace(e, uid=e.uid + "b") for e in EXAMPLES]  # 4 examples: 2 batches of 2


def _cfg(**overrides) -> TrainConfig:
    base = {"epochs": 10, "batch_size": 2, "lr": 1e-2, "max_steps": 8, "checkpoint_every": 100, "log_every": 2}
    return TrainConfig(**(base | overrides))


def _run(tmp_path, cfg: TrainConfig, validate=None, student=None):
    from amad.testing import FakeFeatures

    _, fresh, _ = _pair()
    student = student or fresh
    result = train(
        student,
        EXAMPLES4,
        FakeFeatures(*FEATURES_DIM),
        cfg,
        terms=parse_method("none", {"task": 1.0}),
        seed=0,
        work_dir=tmp_path,
        run_fingerprint="test",
        progress=False,
        validate=validate,
        metric="val accuracy",
    )
    return student, result


def _weights(model) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_the_run_ends_with_the_weights_that_scored_best(tmp_path):
    scores, seen = iter([0.1, 0.9, 0.3, 0.5]), []

    def validate(model):
        assert not model.training
        seen.append(_weights(model))
        return next(scores)

    student, result = _run(tmp_path, _cfg(select_on_val=True, eval_every=2), validate)
    assert result.steps == 8 and student.training  # back in training mode after every validation
    assert result.selection["selected_step"] == 4 and result.selection["score"] == 0.9
    assert result.selection["history"] == [[2, 0.1], [4, 0.9], [6, 0.3], [8, 0.5]]
    assert result.selection["metric"] == "val accuracy" and result.selection["every"] == "2 steps"
    assert all(torch.equal(student.state_dict()[k], seen[1][k]) for k in seen[1])  # step 4's weights
    assert not all(torch.equal(seen[1][k], seen[3][k]) for k in seen[1])  # ... which the last step had changed


def test_per_epoch_validation_and_its_schedule(tmp_path):
    steps = []
    _, result = _run(tmp_path, _cfg(select_on_val=True, max_steps=5), lambda m: steps.append(1) or 0.0)
    assert [s for s, _ in result.selection["history"]] == [2, 4, 5]  # 2 micro-batches per epoch, and the last step
    assert result.selection["selected_step"] == 2  # ties keep the earlier weights
    # grad_accum 2 over 3 micro-batches per epoch: steps end on micro 1, 3, 5, ...; epochs end on micro 2, 5, 8, ...
    due = [evaluation_due(s, 2 * s - 1, 2 * s - 3, 3, 10, None) for s in range(1, 6)]
    assert due == [False, True, True, False, True]
    assert evaluation_due(10, 19, 17, 3, 10, None) and evaluation_due(4, 7, 6, 3, 10, 2)


def test_a_resumed_run_selects_the_same_step_and_weights(tmp_path):
    def score(model) -> float:  # a pure function of the weights
        return -float(sum(p.double().pow(2).sum() for p in model.parameters()))

    cfg = _cfg(select_on_val=True, eval_every=2, checkpoint_every=3)
    whole, expected = _run(tmp_path / "whole", cfg, score)
    calls = []

    def crashing(model):
        calls.append(1)
        if len(calls) == 3:  # the validation of step 6, after the checkpoint of step 3 (which holds step 2's score)
            raise RuntimeError("killed")
        return score(model)

    with pytest.raises(RuntimeError, match="killed"):
        _run(tmp_path / "resumed", cfg, crashing)
    resumed, result = _run(tmp_path / "resumed", cfg, score)
    assert result.resumed_from == 3
    assert result.selection == expected.selection
    assert all(torch.equal(whole.state_dict()[k], v) for k, v in resumed.state_dict().items())


def test_selection_needs_a_validation_function(tmp_path):
    with pytest.raises(DataError, match="select_on_val needs a validation function"):
        _run(tmp_path, _cfg(select_on_val=True))


def test_train_label_smoothing_reaches_the_task_loss(tmp_path):
    _, plain = _run(tmp_path / "a", _cfg(max_steps=1))
    student, smoothed = _run(tmp_path / "b", _cfg(max_steps=1, label_smoothing=0.2))
    assert student.label_smoothing == 0.2
    assert smoothed.last_parts["task"] != pytest.approx(plain.last_parts["task"])


def test_workers_train_the_same_weights(tmp_path):
    here, _ = _run(tmp_path / "a", _cfg(max_steps=3))
    forked, _ = _run(tmp_path / "b", _cfg(max_steps=3, num_workers=2))
    assert all(torch.equal(here.state_dict()[k], v) for k, v in forked.state_dict().items())


def test_train_config_options_and_record():
    assert TARGET_MODES == ("top", "sample", "all", "recipe") and AUGMENT_MODES == ("none", "blip", "blip_keep_sides")
    from amad.data.batches import AUGMENT_MODES as LIBRARY_AUGMENT
    from amad.data.targets import TARGET_MODES as LIBRARY_TARGETS

    assert (TARGET_MODES, AUGMENT_MODES) == (LIBRARY_TARGETS, LIBRARY_AUGMENT)  # config.py keeps a torch-free copy
    plain = _cfg()
    old_fields = {"epochs", "batch_size", "lr", "warmup", "clip", "weight_decay", "grad_accum", "max_steps"}
    old_fields |= {"checkpoint_every", "log_every", "mixed_precision", "label_smoothing"}
    assert set(plain.record()) == old_fields  # runs recorded before the new options keep their fingerprints
    assert _cfg(num_workers=4).record() == plain.record()  # workers change no batch
    assert _cfg(select_on_val=True).record()["select_on_val"] is True
    for bad, message in [
        ({"vqa_targets": "every"}, "train.vqa_targets must be one of top, sample, all, recipe"),
        ({"augment": "flip"}, "train.augment must be one of none, blip, blip_keep_sides"),
        ({"num_workers": -1}, "train.num_workers must be >= 0"),
        ({"eval_every": 0}, "train.eval_every must be >= 1 or null"),
        ({"val_num_beams": 0}, "train.val_num_beams must be >= 1"),
    ]:
        with pytest.raises(ConfigError, match=message):
            _cfg(**bad)
