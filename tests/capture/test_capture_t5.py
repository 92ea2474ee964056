"""Attention capture on a tiny T5: equality with eager maps, masks, dropout, gradients, restore, failures."""

from __future__ import annotations

import pytest
import torch
from capture_models import (
    assert_rows_sum_to_one,
    assert_same_snapshot,
    build_t5,
    snapshot,
)
from transformers import T5ForConditionalGeneration

from amad.capture import CaptureSpec, attention_layout, capture_attention
from amad.errors import CaptureError

KINDS = ("encoder_self", "decoder_self", "cross")
ALL = CaptureSpec(layers={kind: None for kind in KINDS})


def run(model: torch.nn.Module, inputs: dict, **kwargs):
    return model(**inputs, decoder_attention_mask=decoder_mask(inputs), **kwargs)


def decoder_mask(inputs: dict) -> torch.Tensor:
    return inputs["labels"] != -100  # (B, T), True = real target token


def eager_reference(model: torch.nn.Module, inputs: dict):
    """The same weights in eager mode, asked for output_attentions (post-dropout: use in eval mode only)."""
    eager = build_t5("eager")
    eager.load_state_dict(model.state_dict())
    eager.train(model.training)
    return run(eager, inputs, output_attentions=True)


def test_layout() -> None:
    assert attention_layout(build_t5()) == {"encoder_self": (2, 4), "decoder_self": (2, 4), "cross": (2, 4)}


def test_default_sdpa_returns_empty_attentions_but_capture_works(t5_inputs) -> None:
    """Why capture exists: transformers 5.24 loads T5 with sdpa, whose output_attentions are empty tuples."""
    model = build_t5(attn_implementation=None)
    assert model.config._attn_implementation == "sdpa"
    out = run(model, t5_inputs, output_attentions=True)
    assert len(out.encoder_attentions) == 0 and len(out.decoder_attentions) == 0 and len(out.cross_attentions) == 0
    with capture_attention(model, ALL) as maps:
        run(model, t5_inputs)
    assert len(maps) == 6
    reference = eager_reference(model, t5_inputs)
    for layer in range(2):
        torch.testing.assert_close(maps[("encoder_self", layer)], reference.encoder_attentions[layer])


@pytest.mark.parametrize("implementation", ["sdpa", "eager"])
def test_eval_maps_equal_eager_attentions_and_outputs_unchanged(t5_inputs, implementation: str) -> None:
    model = build_t5(implementation)
    plain = run(model, t5_inputs).logits
    with capture_attention(model, ALL) as maps:
        logits = run(model, t5_inputs).logits
    reference = eager_reference(model, t5_inputs)
    torch.testing.assert_close(logits, plain)
    expected = {"encoder_self": (3, 4, 6, 6), "decoder_self": (3, 4, 5, 5), "cross": (3, 4, 5, 6)}
    returned = {
        "encoder_self": reference.encoder_attentions,
        "decoder_self": reference.decoder_attentions,
        "cross": reference.cross_attentions,
    }
    assert sorted(maps.keys()) == sorted((kind, layer) for kind in KINDS for layer in range(2))
    for (kind, layer), probs in maps.probs.items():
        assert probs.shape == expected[kind]
        torch.testing.assert_close(probs, returned[kind][layer], rtol=0, atol=1e-6)
        assert_rows_sum_to_one(probs)


def test_padding_and_causal_masks_give_zero_probability(t5_inputs) -> None:
    model = build_t5(None)  # sdpa stack: bool masks, and no mask at all where nothing is padded
    with capture_attention(model, ALL) as maps:
        run(model, t5_inputs)
    enc_valid = t5_inputs["attention_mask"]  # (B, K)
    dec_valid = decoder_mask(t5_inputs)  # (B, T)
    causal = torch.ones(5, 5, dtype=torch.bool).tril()  # (Q, K)
    for layer in range(2):
        enc = maps[("encoder_self", layer)]  # (B, H, Q, K)
        assert (enc.masked_select(~enc_valid[:, None, None, :]) == 0).all()
        assert (enc.masked_select(enc_valid[:, None, None, :]) > 0).all()
        cross = maps[("cross", layer)]
        assert (cross.masked_select(~enc_valid[:, None, None, :]) == 0).all()
        dec = maps[("decoder_self", layer)]
        allowed = causal[None, None] & dec_valid[:, None, None, :]  # (B, 1, Q, K)
        assert (dec.masked_select(~allowed) == 0).all()
        assert (dec.masked_select(allowed) > 0).all()


def test_unpadded_sdpa_decoder_is_causal(t5_inputs) -> None:
    """Without padding the sdpa stack passes no mask and relies on is_causal: capture must apply causality itself."""
    model = build_t5(None)
    inputs = {"input_ids": t5_inputs["input_ids"][:1], "decoder_input_ids": torch.tensor([[0, 7, 8, 9]])}
    with capture_attention(model, CaptureSpec(layers={"decoder_self": None})) as maps:
        model(**inputs)
    eager = build_t5("eager")
    eager.load_state_dict(model.state_dict())
    reference = eager(**inputs, output_attentions=True).decoder_attentions
    for layer in range(2):
        probs = maps[("decoder_self", layer)]  # (1, H, 4, 4)
        assert (probs.triu(diagonal=1) == 0).all()
        torch.testing.assert_close(probs, reference[layer], rtol=0, atol=1e-6)


def test_train_mode_maps_are_pre_dropout_and_outputs_unchanged(t5_inputs) -> None:
    model = build_t5("eager").train()
    torch.manual_seed(5)
    plain = run(model, t5_inputs, output_attentions=True)
    dropped = plain.encoder_attentions[0].sum(-1)  # the model's own weights are post-dropout
    assert (dropped - 1).abs().max() > 0.05
    torch.manual_seed(5)
    with capture_attention(model, ALL) as maps:
        out = run(model, t5_inputs, output_attentions=True)
    torch.testing.assert_close(out.logits, plain.logits)  # same dropout draws, same result
    for layer in range(2):
        captured = maps[("encoder_self", layer)]
        assert_rows_sum_to_one(captured)
        post = out.encoder_attentions[layer]  # dropout(captured): each entry 0 or captured / (1 - p)
        kept = post != 0
        assert (~kept).any() and kept.any()
        torch.testing.assert_close(post[kept], captured[kept] / 0.7)


def test_gradients_flow_through_captured_maps(t5_inputs) -> None:
    model = build_t5(None).train()
    spec = CaptureSpec(layers={"encoder_self": [1], "decoder_self": [1], "cross": [0]})
    with capture_attention(model, spec) as maps:
        run(model, t5_inputs)
    assert all(p.requires_grad for p in maps.probs.values())
    weights = torch.randn(3, 4, 6, 6, generator=torch.Generator().manual_seed(0))
    loss = (maps[("encoder_self", 1)] * weights).sum() + maps[("decoder_self", 1)].pow(2).sum()
    loss = loss + maps[("cross", 0)].pow(2).sum()
    loss.backward()
    for attention in (
        model.encoder.block[1].layer[0].SelfAttention,
        model.decoder.block[1].layer[0].SelfAttention,
        model.decoder.block[0].layer[1].EncDecAttention,
    ):
        assert attention.q.weight.grad.abs().sum() > 0
        assert attention.k.weight.grad.abs().sum() > 0
    assert model.shared.weight.grad.abs().sum() > 0
    assert model.decoder.final_layer_norm.weight.grad is None  # the maps do not depend on later modules


def test_only_selected_layers_switch_and_other_layers_keep_sdpa(t5_inputs) -> None:
    model = build_t5(None)
    plain = run(model, t5_inputs).logits
    modules = {
        ("encoder_self", 0): model.encoder.block[0].layer[0].SelfAttention,
        ("encoder_self", 1): model.encoder.block[1].layer[0].SelfAttention,
        ("decoder_self", 0): model.decoder.block[0].layer[0].SelfAttention,
        ("cross", 1): model.decoder.block[1].layer[1].EncDecAttention,
    }
    with capture_attention(model, CaptureSpec(layers={"encoder_self": [-1]})) as maps:
        implementations = {key: m.config._attn_implementation for key, m in modules.items()}
        logits = run(model, t5_inputs).logits
    assert implementations == {
        ("encoder_self", 0): "sdpa",
        ("encoder_self", 1): "amad_record",
        ("decoder_self", 0): "sdpa",
        ("cross", 1): "sdpa",
    }
    assert list(maps.keys()) == [("encoder_self", 1)]
    torch.testing.assert_close(logits, plain, rtol=1e-5, atol=1e-5)


def test_nested_captures_both_record(t5_inputs) -> None:
    model = build_t5(None)
    before = snapshot(model)
    with (
        capture_attention(model, CaptureSpec(layers={"encoder_self": None})) as outer,
        capture_attention(model, CaptureSpec(layers={"encoder_self": [1], "cross": [0]})) as inner,
    ):
        run(model, t5_inputs)
    assert sorted(outer.keys()) == [("encoder_self", 0), ("encoder_self", 1)]
    assert sorted(inner.keys()) == [("cross", 0), ("encoder_self", 1)]
    assert outer[("encoder_self", 1)] is inner[("encoder_self", 1)]
    assert_same_snapshot(before, snapshot(model))


def test_teacher_under_no_grad(t5_inputs) -> None:
    model = build_t5(None)
    with torch.no_grad(), capture_attention(model, ALL) as maps:
        run(model, t5_inputs)
    assert len(maps) == 6 and not any(p.requires_grad for p in maps.probs.values())


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_model_restored_after_exit_and_after_exception(t5_inputs, mode: str) -> None:
    model = build_t5(None).train(mode == "train")
    before = snapshot(model)
    with capture_attention(model, ALL):
        run(model, t5_inputs)
    assert_same_snapshot(before, snapshot(model))
    with pytest.raises(ValueError, match="boom"), capture_attention(model, ALL):
        run(model, t5_inputs)
        raise ValueError("boom")
    assert_same_snapshot(before, snapshot(model))
    assert all(m.config._attn_implementation == "sdpa" for m in model.modules() if hasattr(m, "config"))


def test_custom_encoder_loop_is_captured(t5_inputs) -> None:
    """A VL-T5-style model that runs the encoder blocks itself, with its own bias and additive mask."""

    class LoopingT5(T5ForConditionalGeneration):
        def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            hidden = self.shared(input_ids)  # (B, L, D)
            length = input_ids.shape[1]
            bias = self.encoder.block[0].layer[0].SelfAttention.compute_bias(length, length)  # (1, H, L, L)
            additive = (~attention_mask[:, None, None, :]).float() * torch.finfo(torch.float32).min  # (B, 1, 1, L)
            for block in self.encoder.block:
                hidden = block(hidden, attention_mask=additive, position_bias=bias)[0]
            return self.encoder.final_layer_norm(hidden)

    model = build_t5(None)
    looping = LoopingT5._from_config(model.config).eval()
    looping.load_state_dict(model.state_dict())
    with capture_attention(looping, CaptureSpec(layers={"encoder_self": None})) as maps:
        looping.encode(t5_inputs["input_ids"], t5_inputs["attention_mask"])
    reference = eager_reference(model, t5_inputs)
    for layer in range(2):
        torch.testing.assert_close(maps[("encoder_self", layer)], reference.encoder_attentions[layer])


def test_generate_keeps_the_last_call(t5_inputs) -> None:
    model = build_t5(None)
    spec = CaptureSpec(layers={"encoder_self": [0], "decoder_self": [0], "cross": [0]})
    with capture_attention(model, spec) as maps:
        model.generate(
            input_ids=t5_inputs["input_ids"], attention_mask=t5_inputs["attention_mask"], max_new_tokens=3, min_length=4
        )
    assert maps[("encoder_self", 0)].shape == (3, 4, 6, 6)
    # the third decoding step: one query over the 3 cached decoder positions / the 6 encoder positions
    assert maps[("decoder_self", 0)].shape == (3, 4, 1, 3)
    assert maps[("cross", 0)].shape == (3, 4, 1, 6)


def test_layer_that_never_ran_fails_loudly(t5_inputs) -> None:
    model = build_t5(None)
    before = snapshot(model)
    with (
        pytest.raises(CaptureError, match=r"2 requested attention map\(s\) were never computed.*cross layer 0"),
        capture_attention(model, CaptureSpec(layers={"encoder_self": [0], "cross": None})),
    ):
        model.encoder(input_ids=t5_inputs["input_ids"], attention_mask=t5_inputs["attention_mask"])
    assert_same_snapshot(before, snapshot(model))


def test_gradient_checkpointing_in_training_is_refused(t5_inputs) -> None:
    model = build_t5(None).train()
    model.activation_checkpointing_enable()
    with pytest.raises(CaptureError, match="activation_checkpointing_disable"), capture_attention(model, ALL):
        pass


def test_recording_function_outside_capture_is_refused(t5_inputs) -> None:
    model = T5ForConditionalGeneration._from_config(build_t5().config, attn_implementation="amad_record")
    with pytest.raises(CaptureError, match="only usable inside"):
        run(model, t5_inputs)
