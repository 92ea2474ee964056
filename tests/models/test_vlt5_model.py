"""VL-T5 port on transformers 5.24 T5: visual embedding, joint encoder, decoder, generation, paper sizes."""

from __future__ import annotations

import pytest
import torch
from helpers_vlt5 import FEAT_DIM
from transformers import T5Config, T5ForConditionalGeneration

from amad.capture import CaptureSpec, capture_attention
from amad.errors import ConfigError
from amad.models.vlt5.encoder import VLT5ForConditionalGeneration
from amad.models.vlt5.visual import VLT5Config, vlt5_box_area

SIZES = dict(vocab_size=60, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4, dropout_rate=0.0)


def tiny(attn: str | None = None, seed: int = 0) -> VLT5ForConditionalGeneration:
    torch.manual_seed(seed)
    config = VLT5Config(**SIZES, feat_dim=FEAT_DIM, n_boxes=5, decoder_start_token_id=0)
    if attn is None:
        return VLT5ForConditionalGeneration(config).eval()
    return VLT5ForConditionalGeneration._from_config(config, attn_implementation=attn).eval()


def inputs(seed: int = 1) -> dict[str, torch.Tensor]:
    """B=3, L=6 (lengths 6, 4, 6), N=5 regions (5, 3, 5 valid), T=4 decoder tokens."""
    g = torch.Generator().manual_seed(seed)
    mask = torch.ones(3, 6, dtype=torch.bool)
    mask[1, 4:] = False
    vis_mask = torch.ones(3, 5, dtype=torch.bool)
    vis_mask[1, 3:] = False
    corners = torch.rand(3, 5, 2, 2, generator=g).sort(dim=2).values  # (B, N, [min, max], [x, y])
    return {
        "input_ids": torch.randint(5, 55, (3, 6), generator=g).masked_fill(~mask, 0),
        "attention_mask": mask,
        "vis_feats": torch.randn(3, 5, FEAT_DIM, generator=g),
        "vis_boxes": corners.flatten(2),  # x1, y1, x2, y2
        "vis_mask": vis_mask,
        "decoder_input_ids": torch.randint(2, 55, (3, 4), generator=g),
    }


def test_area_reproduces_vlt5_quirk():
    boxes = torch.tensor([[[0.1, 0.2, 0.5, 0.9]]])  # x1, y1, x2, y2: the true area is 0.4 * 0.7 = 0.28
    # VL-T5 reads the boxes as (x1, x2, y1, y2): (y2 - x2) * (y1 - x1) = 0.4 * 0.1
    assert vlt5_box_area(boxes).item() == pytest.approx(0.04)


def test_visual_parameter_names_match_the_released_checkpoint():
    names = {n for n, _ in tiny().named_parameters() if "visual" in n}
    assert names == {
        "encoder.visual_embedding.feat_embedding.0.weight",
        "encoder.visual_embedding.feat_embedding.0.bias",
        "encoder.visual_embedding.feat_embedding.1.weight",
        "encoder.visual_embedding.absolute_vis_pos_embedding.0.weight",
        "encoder.visual_embedding.absolute_vis_pos_embedding.0.bias",
        "encoder.visual_embedding.absolute_vis_pos_embedding.1.weight",
        "encoder.visual_embedding.img_order_embedding.weight",
    }


def test_visual_embedding_sums_the_four_branches_with_box_order_from_the_last_vocabulary_rows():
    model, x = tiny(), inputs()
    emb = model.encoder.visual_embedding
    feats, boxes = x["vis_feats"], x["vis_boxes"]
    area = ((boxes[..., 3] - boxes[..., 2]) * (boxes[..., 1] - boxes[..., 0])).unsqueeze(-1)
    expected = (
        emb.feat_embedding(feats)
        + emb.absolute_vis_pos_embedding(torch.cat([boxes, area], -1))
        + emb.img_order_embedding.weight[0]
        + model.shared.weight[[59, 58, 57, 56, 55]]  # box k -> row 60 - k - 1
    )
    torch.testing.assert_close(emb(feats, boxes, model.shared), expected)


def test_relative_bias_is_the_text_bias_on_the_text_block_and_zero_elsewhere():
    encoder = tiny().encoder
    bias = encoder.text_position_bias(6, 11, torch.device("cpu"))
    assert bias.shape == (1, 4, 11, 11)
    text = encoder.block[0].layer[0].SelfAttention.compute_bias(6, 6)
    torch.testing.assert_close(bias[:, :, :6, :6], text)
    assert text.abs().sum() > 0
    assert bias[:, :, 6:].abs().sum() == 0 and bias[:, :, :, 6:].abs().sum() == 0


def test_encoder_attention_equals_a_manual_joint_attention():
    """Layer 0: scores q.k + text-only bias, masked keys out, softmax over [text ; regions]."""
    model, x = tiny(), inputs()
    enc = model.encoder
    with torch.no_grad(), capture_attention(model, CaptureSpec(layers={"encoder_self": [0]})) as maps:
        enc(**{k: v for k, v in x.items() if k != "decoder_input_ids"})
        text = enc.embed_tokens(x["input_ids"])  # (B, L, D)
        vis = enc.visual_embedding(x["vis_feats"], x["vis_boxes"], enc.embed_tokens)  # (B, N, D)
        hidden = enc.block[0].layer[0].layer_norm(torch.cat([text, vis], 1))  # (B, L+N, D)
        attn = enc.block[0].layer[0].SelfAttention
        q = attn.q(hidden).view(3, 11, 4, 8).transpose(1, 2)  # (B, H, L+N, Dh)
        k = attn.k(hidden).view(3, 11, 4, 8).transpose(1, 2)
        scores = q @ k.transpose(-1, -2)  # (B, H, L+N, L+N)
        scores[:, :, :6, :6] += attn.compute_bias(6, 6)[0]
        keys = torch.cat([x["attention_mask"], x["vis_mask"]], 1)  # (B, L+N)
        expected = scores.masked_fill(~keys[:, None, None, :], float("-inf")).softmax(-1)
    probs = maps.probs[("encoder_self", 0)]
    assert probs.shape == (3, 4, 11, 11)
    torch.testing.assert_close(probs, expected)
    assert probs[1, :, :, 4:6].abs().max() == 0 and probs[1, :, :, 9:].abs().max() == 0  # padded text and regions


def test_sdpa_and_eager_give_the_same_logits_and_capture_changes_nothing():
    x = inputs()
    sdpa, eager = tiny("sdpa"), tiny("eager")
    eager.load_state_dict(sdpa.state_dict())
    with torch.no_grad():
        a, b = sdpa(**x).logits, eager(**x).logits
        with capture_attention(sdpa, CaptureSpec(layers={"encoder_self": [1], "cross": [0]})):
            c = sdpa(**x).logits
    assert a.shape == (3, 4, 60)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(a, c, atol=1e-5, rtol=1e-5)


def test_text_only_mode_is_exactly_t5():
    """Without regions the joint encoder is T5's encoder: same weights, same logits as stock T5."""
    model, x = tiny(), inputs()
    t5 = T5ForConditionalGeneration(T5Config(**SIZES, decoder_start_token_id=0)).eval()
    missing, unexpected = t5.load_state_dict(model.state_dict(), strict=False)
    assert not missing and all(k.startswith("encoder.visual_embedding.") for k in unexpected)
    text = {k: x[k] for k in ("input_ids", "attention_mask", "decoder_input_ids")}
    with torch.no_grad():
        ours, theirs = model(**text), t5(**text)
    assert ours.encoder_last_hidden_state.shape == (3, 6, 32)
    torch.testing.assert_close(ours.logits, theirs.logits)
    with torch.no_grad():
        with_regions = model(**x).logits
    assert (with_regions - ours.logits).abs().max() > 1e-3  # the regions do reach the decoder


def test_precomputed_encoder_outputs_with_text_mask_match_a_full_forward():
    model, x = tiny(), inputs()
    with torch.no_grad():
        full = model(**x).logits
        enc = model.encoder(**{k: v for k, v in x.items() if k != "decoder_input_ids"})
        assert enc.last_hidden_state.shape == (3, 11, 32) and enc.attention_mask.shape == (3, 11)
        again = model(
            encoder_outputs=(enc.last_hidden_state,),
            attention_mask=x["attention_mask"],  # (B, L): extended with vis_mask
            vis_mask=x["vis_mask"],
            decoder_input_ids=x["decoder_input_ids"],
        ).logits
    torch.testing.assert_close(full, again)


def test_loss_backward_reaches_the_visual_embedding_and_tied_head():
    model, x = tiny(), inputs()
    labels = x.pop("decoder_input_ids")
    out = model(**x, labels=labels)
    out.loss.backward()
    assert torch.isfinite(out.loss)
    assert model.encoder.visual_embedding.feat_embedding[0].weight.grad.abs().sum() > 0
    assert model.lm_head.weight is model.shared.weight and model.encoder.embed_tokens.weight is model.shared.weight
    assert model.shared.weight.grad[55:].abs().sum() > 0  # box-order rows are trained through the encoder


def test_generate_greedy_and_beam_with_regions_per_example():
    model, x = tiny(), inputs()
    x.pop("decoder_input_ids")
    for beams in (1, 3):
        batch = model.generate(**x, num_beams=beams, max_new_tokens=4, do_sample=False)
        for i in range(3):
            one = {
                "input_ids": x["input_ids"][i : i + 1, : int(x["attention_mask"][i].sum())],
                "vis_feats": x["vis_feats"][i : i + 1, : int(x["vis_mask"][i].sum())],
                "vis_boxes": x["vis_boxes"][i : i + 1, : int(x["vis_mask"][i].sum())],
            }
            alone = model.generate(**one, num_beams=beams, max_new_tokens=4, do_sample=False)
            assert batch[i, : alone.shape[1]].tolist() == alone[0].tolist()


def test_vis_feats_without_boxes_is_a_config_error():
    x = inputs()
    with pytest.raises(ConfigError, match=r"without vis_boxes"):
        tiny().encoder(input_ids=x["input_ids"], vis_feats=x["vis_feats"])


def test_t5_base_sized_vlt5_has_t5_base_parameters_plus_the_visual_embedding():
    sizes = dict(d_model=768, d_kv=64, d_ff=3072, num_layers=12, num_heads=12)
    with torch.device("meta"):
        t5_base = T5ForConditionalGeneration(T5Config(vocab_size=32128, **sizes))
        t5_32200 = T5ForConditionalGeneration(T5Config(vocab_size=32200, **sizes))
        vlt5 = VLT5ForConditionalGeneration(VLT5Config(vocab_size=32200, feat_dim=2048, n_boxes=36, **sizes))

    def count(m: torch.nn.Module) -> int:
        return sum(p.numel() for p in m.parameters())  # tied weights counted once

    assert count(t5_base) == 222_903_552  # the published t5-base size
    visual = (2048 * 768 + 768) + 768 + (5 * 768 + 768) + 768 + 2 * 768
    assert count(vlt5) == count(t5_32200) + visual == 222_903_552 + 72 * 768 + visual
