"""The stages' validation hook for select_on_val: the task's headline metric on the validation split."""

from __future__ import annotations

import dataclasses
import json

import pytest

from amad.models import build_model
from amad.testing import TINY_VLT5, FakeFeatures, make_tokenizer
from amad_suite.config import TrainConfig
from amad_suite.pipeline.layout import DataLayout
from amad_suite.pipeline.train_stages import validation


def _mini_vqa_val(root):
    folder = root / "raw" / "vqa"
    folder.mkdir(parents=True)
    meta = {"data_type": "easy-vqa", "data_subtype": "val"}
    questions = [{"image_id": i, "question": "what color is the circle ?", "question_id": i} for i in (1, 2, 3)]
    answers = [[{"answer": a}] * 10 for a in ("red", "blue", "red")]
    annotations = [{"question_id": i, "answers": a, "answer_type": "other"} for i, a in zip((1, 2, 3), answers)]
    (folder / "questions_val.json").write_text(json.dumps({**meta, "questions": questions}))
    (folder / "annotations_val.json").write_text(json.dumps({**meta, "annotations": annotations}))
    return DataLayout(root, "mini")


def test_validation_scores_vqa_accuracy_on_the_val_split(tmp_path, monkeypatch):
    layout = _mini_vqa_val(tmp_path)  # answers red, blue, red
    model = build_model("vlt5", "vqa", TINY_VLT5, make_tokenizer(), seed=0)
    calls = []

    def always_red(batch, **kwargs):
        calls.append(kwargs)
        return ["red"] * len(batch)

    monkeypatch.setattr(model, "generate", always_red)
    cfg = TrainConfig(epochs=1, batch_size=2, lr=1e-3, select_on_val=True, val_num_beams=2)
    hook = validation(layout, "vqa", FakeFeatures(5, 12), cfg)
    assert hook["metric"] == "val accuracy"
    assert hook["validate"](model) == pytest.approx(200 / 3)  # 2 of 3 right
    assert calls[0] == {"num_beams": 2, "max_new_tokens": 10}  # VL-T5's VQA target length
    first_two = validation(layout, "vqa", FakeFeatures(5, 12), dataclasses.replace(cfg, val_examples=2))
    assert first_two["validate"](model) == pytest.approx(50.0)
    assert validation(layout, "vqa", None, TrainConfig(epochs=1, batch_size=2, lr=1e-3)) == {}  # off: nothing
