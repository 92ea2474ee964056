"""Per-family recipe details in the models: BLIP's loss over every answer of a question, decoding lengths that count
the decoder's prefix (BLIP caption_coco.yaml), and label smoothing that reaches the task loss of both families."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from amad.errors import ConfigError
from amad.models import build_model
from amad.models.base import generation_lengths
from amad.testing import TINY_VLT5, FakeFeatures, tiny_size
from amad.types import Example

ANSWERS = (("red", 0.7), ("blue", 0.2), ("green", 0.1))


def _vqa(targets=()) -> list[Example]:
    return [
        Example("q1", "1", "what color is the circle ?", "red", ["red"] * 10, targets=targets),
        Example("q2", "2", "how many shapes are there ?", "two", ["two"] * 10, 0.6, targets=(("two", 1.0),)),
    ]


def test_blip_trains_on_every_answer_sum_per_question_mean_over_questions(tokenizer, images):
    model = build_model("blip", "vqa", "blip-smoke-teacher", tokenizer, seed=0).eval()
    batch = model.collate(_vqa(ANSWERS), images, train=True)
    assert batch.labels.shape[0] == 4 and batch.label_owner.tolist() == [0, 0, 0, 1]
    assert batch.label_weights.tolist() == pytest.approx([0.7, 0.2, 0.1, 1.0])
    # each row alone: one question with one answer at weight 1 gives that answer's token-mean CE
    rows = [("q1", "1", "what color is the circle ?", a) for a, _ in ANSWERS] + [
        ("q2", "2", "how many shapes are there ?", "two")
    ]
    alone = [model(model.collate([Example(u, i, q, a, [a])], images, train=True)).loss for u, i, q, a in rows]
    expected = (0.7 * alone[0] + 0.2 * alone[1] + 0.1 * alone[2] + 1.0 * alone[3]) / 2  # blip_vqa.py: sum / B
    with torch.no_grad():
        out = model(batch)
    assert out.logits.shape[0] == 4 and torch.allclose(out.loss, expected, atol=1e-5)
    evaluation = model.collate(_vqa(ANSWERS), images, train=False)  # evaluation batches keep one label per question
    assert evaluation.label_owner is None and evaluation.labels.shape[0] == 2


def test_answer_maps_get_the_question_mask_of_their_owner(tokenizer, images):
    from amad.capture import CaptureSpec

    model = build_model("blip", "vqa", "blip-smoke-teacher", tokenizer, seed=0).eval()
    batch = model.collate(_vqa(ANSWERS), images, train=True)
    spec = CaptureSpec(layers={"answer_cross": [0], "text_self": [0]})
    with torch.no_grad():
        maps = model(batch, capture=spec).attentions
    assert maps[("answer_cross", 0)].shape[0] == 4 and maps[("text_self", 0)].shape[0] == 2
    assert torch.equal(maps.key_mask["answer_cross"], batch.attention_mask[batch.label_owner])


def test_blip_captions_and_vlt5_refuse_several_targets(tokenizer, images):
    caption = build_model("blip", "caption", "blip-smoke-teacher", tokenizer, seed=0)
    several = [Example("c1", "1", "", "a red circle", [], targets=(("a red circle", 1.0),))]
    with pytest.raises(ConfigError, match="captions train one per example"):
        caption.collate(several, images, train=True)
    vlt5 = build_model("vlt5", "vqa", TINY_VLT5, tokenizer, seed=0)
    with pytest.raises(ConfigError, match="VL-T5 trains on one target per example"):
        vlt5.collate(_vqa(ANSWERS), FakeFeatures(5, 12), train=True)


def test_generation_lengths():
    assert generation_lengths(10) == {"max_new_tokens": 10}
    assert generation_lengths(10, 4) == {"max_new_tokens": 4}
    assert generation_lengths(10, 4, min_length=5, max_length=20) == {"max_length": 20, "min_length": 5}
    with pytest.raises(ConfigError, match="max_length must be a positive integer"):
        generation_lengths(10, max_length=0)
    with pytest.raises(ConfigError, match="min_length must be a non-negative integer"):
        generation_lengths(10, min_length=-1)


def test_blip_caption_lengths_count_the_prompt_prefix(tokenizer, images, monkeypatch):
    size = tiny_size("blip-smoke-teacher", prompt="a picture of")  # [DEC] a picture of: P = 4, as BLIP's prefix
    model = build_model("blip", "caption", size, tokenizer, seed=0).eval()
    batch = model.collate([Example("c1", "1", "", "a red circle", [])], images, train=False)
    seen = {}
    real = model.model.text_decoder.generate

    def spy(**kwargs):
        out = real(**kwargs)
        seen.update(kwargs, length=out.shape[1])
        return out

    monkeypatch.setattr(model.model.text_decoder, "generate", spy)
    model.generate(batch, num_beams=3, min_length=5, max_length=7)
    assert (seen["num_beams"], seen["min_length"], seen["max_length"]) == (3, 5, 7) and "max_new_tokens" not in seen
    assert 5 <= seen["length"] <= 7  # prefix of 4 + at least 1, at most 3 new tokens
    model.generate(batch, max_new_tokens=2)
    assert seen["max_new_tokens"] == 2 and seen["length"] <= 6


def test_vlt5_max_length_counts_the_decoder_start(tokenizer):
    model = build_model("vlt5", "caption", TINY_VLT5, tokenizer, seed=0).eval()
    batch = model.collate([Example("c1", "1", "", "a red circle", [])], FakeFeatures(5, 12), train=False)
    lengths = [len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in model.generate(batch, max_length=3)]
    assert max(lengths) <= 2  # decoder start + at most 2 tokens


@pytest.mark.parametrize("family", ["vlt5", "blip"])
def test_label_smoothing_changes_the_task_loss_of_both_families(family, tokenizer, images):
    size = TINY_VLT5 if family == "vlt5" else "blip-smoke-teacher"
    model = build_model(family, "vqa", size, tokenizer, seed=0).eval()
    visual = FakeFeatures(5, 12) if family == "vlt5" else images
    batch = model.collate([dataclasses.replace(e, targets=()) for e in _vqa()], visual, train=True)
    assert model.label_smoothing == 0.0
    with torch.no_grad():
        plain = model(batch).loss
        model.label_smoothing = 0.1
        smoothed = model(batch).loss
    assert not torch.allclose(plain, smoothed)
