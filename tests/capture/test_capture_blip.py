"""Attention capture on tiny BLIP caption and VQA models: every kind, eval and train, masks, gradients, restore."""

from __future__ import annotations

import pytest
import torch
from capture_models import assert_rows_sum_to_one, assert_same_snapshot, build_blip, snapshot
from transformers import BlipForConditionalGeneration, BlipForQuestionAnswering

from amad.capture import CaptureSpec, attention_layout, capture_attention
from amad.errors import CaptureError

CAPTION_KINDS = ("vision_self", "text_self", "text_cross")
VQA_KINDS = (*CAPTION_KINDS, "answer_self", "answer_cross")
ANSWER_MASK = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])  # (B, La)


def answer_ids() -> torch.Tensor:
    return torch.tensor([[3, 10, 11, 1], [3, 12, 0, 0]])  # (B, La), [DEC] first, padded second row


def forward_caption(model: BlipForConditionalGeneration, inputs: dict):
    labels = inputs["input_ids"].masked_fill(inputs["attention_mask"] == 0, -100)
    return model(**inputs, labels=labels)


def forward_vqa(model: BlipForQuestionAnswering, inputs: dict):
    labels = answer_ids().masked_fill(ANSWER_MASK == 0, -100)
    return model(**inputs, decoder_input_ids=answer_ids(), decoder_attention_mask=ANSWER_MASK, labels=labels)


def towers_with_attentions(model, inputs: dict) -> dict[str, tuple[torch.Tensor, ...]]:
    """The same computation through the towers, asking each for output_attentions (what capture must match)."""
    vision = model.vision_model(pixel_values=inputs["pixel_values"], output_attentions=True)
    image = vision.last_hidden_state  # (B, N, D)
    text_tower = model.text_encoder if isinstance(model, BlipForQuestionAnswering) else model.text_decoder
    text = text_tower(
        input_ids=inputs["input_ids"],
        attention_mask=inputs["attention_mask"],
        encoder_hidden_states=image,
        output_attentions=True,
    )
    out = {"vision_self": vision.attentions, "text_self": text.attentions, "text_cross": text.cross_attentions}
    if isinstance(model, BlipForQuestionAnswering):
        answer = model.text_decoder(
            input_ids=answer_ids(),
            attention_mask=ANSWER_MASK,
            encoder_hidden_states=text.last_hidden_state,
            encoder_attention_mask=inputs["attention_mask"],
            output_attentions=True,
        )
        out.update(answer_self=answer.attentions, answer_cross=answer.cross_attentions)
    return out


CASES = [
    (BlipForConditionalGeneration, CAPTION_KINDS, forward_caption),
    (BlipForQuestionAnswering, VQA_KINDS, forward_vqa),
]


@pytest.mark.parametrize(("cls", "kinds", "forward"), CASES)
def test_layout(cls, kinds, forward) -> None:
    assert attention_layout(build_blip(cls)) == {kind: (2, 4) for kind in kinds}


@pytest.mark.parametrize(("cls", "kinds", "forward"), CASES)
def test_eval_maps_equal_tower_attentions(blip_inputs, cls, kinds, forward) -> None:
    model = build_blip(cls)
    plain = forward(model, blip_inputs).loss
    with capture_attention(model, CaptureSpec(layers=dict.fromkeys(kinds))) as maps:
        loss = forward(model, blip_inputs).loss
    torch.testing.assert_close(loss, plain, rtol=0, atol=0)
    reference = towers_with_attentions(model, blip_inputs)
    shapes = {
        "vision_self": (2, 4, 17, 17),
        "text_self": (2, 4, 5, 5),
        "text_cross": (2, 4, 5, 17),
        "answer_self": (2, 4, 4, 4),
        "answer_cross": (2, 4, 4, 5),
    }
    assert sorted(maps.keys()) == sorted((kind, layer) for kind in kinds for layer in range(2))
    for (kind, layer), probs in maps.probs.items():
        assert probs.shape == shapes[kind]
        torch.testing.assert_close(probs, reference[kind][layer], rtol=0, atol=1e-6)
        assert_rows_sum_to_one(probs)


@pytest.mark.parametrize(("cls", "kinds", "forward"), CASES)
def test_padding_gives_zero_probability(blip_inputs, cls, kinds, forward) -> None:
    model = build_blip(cls)
    with capture_attention(model, CaptureSpec(layers=dict.fromkeys(kinds))) as maps:
        forward(model, blip_inputs)
    text_valid = blip_inputs["attention_mask"].bool()[:, None, None, :]  # (B, 1, 1, K)
    text_self = maps[("text_self", 1)]
    assert (text_self.masked_select(~text_valid) == 0).all()
    assert (maps[("text_cross", 1)] > 0).all()  # every image token is a valid key
    if cls is BlipForQuestionAnswering:
        assert (text_self.masked_select(text_valid) > 0).all()  # the question encoder is bidirectional
        # transformers 5.24 drops the cross-attention mask: BlipTextAttention passes encoder_attention_mask to
        # BlipTextSelfAttention as `attention_mask`, which the cross branch ignores. Capture records what the model
        # computes, so padded question tokens get probability; a fix upstream makes this assertion fail on purpose.
        assert (maps[("answer_cross", 0)].masked_select(~text_valid) > 0).all()
        answer = maps[("answer_self", 0)]  # causal and padded
        allowed = torch.ones(4, 4, dtype=torch.bool).tril()[None, None] & ANSWER_MASK.bool()[:, None, None, :]
        assert (answer.masked_select(~allowed) == 0).all()
        assert (answer.masked_select(allowed) > 0).all()


@pytest.mark.parametrize(("cls", "kinds", "forward"), CASES)
def test_train_mode_maps_are_pre_dropout_and_carry_gradients(blip_inputs, cls, kinds, forward) -> None:
    model = build_blip(cls).train()
    torch.manual_seed(3)
    vision = model.vision_model(pixel_values=blip_inputs["pixel_values"], output_attentions=True).attentions[0]
    assert (vision.sum(-1) - 1).abs().max() > 0.05  # BLIP vision returns post-dropout probabilities
    with capture_attention(model, CaptureSpec(layers=dict.fromkeys(kinds))) as maps:
        forward(model, blip_inputs)
    for probs in maps.probs.values():
        assert probs.requires_grad
        assert_rows_sum_to_one(probs)
    loss = sum(probs.pow(2).sum() for probs in maps.probs.values())
    loss.backward()
    tower = model.text_encoder if cls is BlipForQuestionAnswering else model.text_decoder.bert
    assert model.vision_model.encoder.layers[1].self_attn.qkv.weight.grad.abs().sum() > 0
    assert tower.encoder.layer[1].attention.self.query.weight.grad.abs().sum() > 0
    assert tower.encoder.layer[1].crossattention.self.key.weight.grad.abs().sum() > 0


@pytest.mark.parametrize(("cls", "kinds", "forward"), CASES)
def test_only_selected_layers_are_hooked_and_model_restored(blip_inputs, cls, kinds, forward) -> None:
    model = build_blip(cls).train()
    before = snapshot(model)
    spec = CaptureSpec(layers={"vision_self": [1], kinds[-1]: [0]})
    with capture_attention(model, spec) as maps:
        hooked = [name for name, m in model.named_modules() if m._forward_pre_hooks]
        forward(model, blip_inputs)
    assert sorted(maps.keys()) == [(kinds[-1], 0), ("vision_self", 1)]
    assert len(hooked) == 2 and all(name.endswith("dropout") for name in hooked)
    assert_same_snapshot(before, snapshot(model))
    with pytest.raises(RuntimeError, match="boom"), capture_attention(model, spec):
        raise RuntimeError("boom")
    assert_same_snapshot(before, snapshot(model))


def test_teacher_under_no_grad_and_missing_tower_fails(blip_inputs) -> None:
    model = build_blip(BlipForQuestionAnswering)
    with torch.no_grad(), capture_attention(model, CaptureSpec(layers={"vision_self": None})) as maps:
        model.vision_model(pixel_values=blip_inputs["pixel_values"])
    assert len(maps) == 2 and not maps[("vision_self", 0)].requires_grad
    spec = CaptureSpec(layers={"vision_self": None, "answer_self": [0]})
    with pytest.raises(CaptureError, match=r"never computed.*answer_self layer 0"), capture_attention(model, spec):
        model.vision_model(pixel_values=blip_inputs["pixel_values"])


def test_caption_model_has_no_answer_kinds() -> None:
    model = build_blip(BlipForConditionalGeneration)
    with pytest.raises(KeyError, match=r"unknown attention kind 'answer_self'.*text_cross, text_self, vision_self"):
        capture_attention(model, CaptureSpec(layers={"answer_self": None})).__enter__()
