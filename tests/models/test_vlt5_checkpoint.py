"""VL-T5 checkpoints: Epoch30.pth remapping (synthetic, released layout), Hugging Face T5 folders, bad input."""

from __future__ import annotations

import pytest
import torch
from helpers_vlt5 import FEAT_DIM
from transformers import BertConfig, T5Config, T5ForConditionalGeneration

from amad.errors import CheckpointError
from amad.models.vlt5.checkpoint import (
    check_family,
    compare_state,
    load_hf_t5,
    load_vlt5_epoch30,
    model_shapes,
    remap_vlt5_keys,
)
from amad.models.vlt5.encoder import VLT5ForConditionalGeneration
from amad.models.vlt5.visual import VLT5Config

SIZES = dict(d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4, dropout_rate=0.0, decoder_start_token_id=0)
BASE = dict(d_model=768, d_kv=64, d_ff=3072, num_layers=12, num_heads=12)


def tiny(seed: int = 0, vocab: int = 60, **overrides) -> VLT5ForConditionalGeneration:
    torch.manual_seed(seed)
    config = VLT5Config(**{**SIZES, **overrides}, vocab_size=vocab, feat_dim=FEAT_DIM, n_boxes=5)
    return VLT5ForConditionalGeneration(config).eval()


def released_layout(state: dict[str, torch.Tensor], prefix: str = "module.") -> dict[str, torch.Tensor]:
    """A state dict as VL-T5 (transformers 4.2.1, DDP) saved it: ``module.``, ``vis_encoder.``, tied aliases,
    the visual box-order alias of ``shared``, and 4.2.1's decoder cross-attention relative bias."""
    state = dict(state)
    shared = state["shared.weight"]
    state["encoder.visual_embedding.obj_order_embedding.weight"] = shared
    state["decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight"] = torch.zeros(
        32, state["decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"].shape[1]
    )
    out = {}
    for key, value in state.items():
        if key.startswith("encoder."):
            key = "vis_encoder." + key[len("encoder.") :]
        out[prefix + key] = value
    return out


def inputs() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    return {
        "input_ids": torch.randint(5, 50, (2, 5), generator=g),
        "vis_feats": torch.randn(2, 4, FEAT_DIM, generator=g),
        "vis_boxes": torch.rand(2, 4, 4, generator=g),
        "decoder_input_ids": torch.randint(2, 50, (2, 3), generator=g),
    }


def test_synthetic_epoch30_loads_with_no_missing_or_unexpected_keys(tmp_path):
    source, target = tiny(seed=0), tiny(seed=1)
    state = released_layout(source.state_dict())
    assert any(k.startswith("module.vis_encoder.visual_embedding.") for k in state)
    assert "module.lm_head.weight" in state and "module.vis_encoder.embed_tokens.weight" in state
    path = tmp_path / "Epoch30.pth"
    torch.save(state, path)
    load_vlt5_epoch30(target, path)
    with torch.no_grad():
        torch.testing.assert_close(target(**inputs()).logits, source(**inputs()).logits)
    assert target.lm_head.weight is target.shared.weight  # still tied after loading


def test_remapping_without_module_prefix_and_nested_state_dict():
    source, target = tiny(seed=0), tiny(seed=1)
    load_vlt5_epoch30(target, {"model": released_layout(source.state_dict(), prefix="")})
    torch.testing.assert_close(target.encoder.visual_embedding.feat_embedding[0].weight,
                               source.encoder.visual_embedding.feat_embedding[0].weight)  # fmt: skip


def test_t5_base_epoch30_layout_matches_a_t5_base_sized_vlt5_exactly():
    """Keys and shapes only (meta device): 32200-row vocabulary, 2048-d regions, 12+12 layers."""
    with torch.device("meta"):
        model = VLT5ForConditionalGeneration(VLT5Config(vocab_size=32200, feat_dim=2048, n_boxes=36, **BASE))
        old = T5ForConditionalGeneration(T5Config(vocab_size=32200, **BASE))  # t5-base backbone keys
    state = {k: v for k, v in old.state_dict().items()}
    for name, shape in {
        "encoder.visual_embedding.feat_embedding.0.weight": (768, 2048),
        "encoder.visual_embedding.feat_embedding.0.bias": (768,),
        "encoder.visual_embedding.feat_embedding.1.weight": (768,),
        "encoder.visual_embedding.absolute_vis_pos_embedding.0.weight": (768, 5),
        "encoder.visual_embedding.absolute_vis_pos_embedding.0.bias": (768,),
        "encoder.visual_embedding.absolute_vis_pos_embedding.1.weight": (768,),
        "encoder.visual_embedding.img_order_embedding.weight": (2, 768),
    }.items():
        state[name] = torch.empty(shape, device="meta")
    released = released_layout(state)
    assert released["module.shared.weight"].shape == (32200, 768)
    remapped = remap_vlt5_keys(released)
    check_family(list(remapped), "Epoch30.pth")
    expected = model_shapes(model)
    compare_state(remapped, expected, "Epoch30.pth")  # raises on any mismatch
    assert set(remapped) == set(expected)
    assert {k: tuple(v.shape) for k, v in remapped.items()} == {k: tuple(s) for k, s in expected.items()}


def test_wrong_shape_names_the_key_both_shapes_and_the_size_to_change():
    state = released_layout(tiny(d_ff=48).state_dict())
    with pytest.raises(CheckpointError) as err:
        load_vlt5_epoch30(tiny(), state)
    message = str(err.value)
    assert "\n" not in message
    assert "DenseReluDense.wi.weight" in message and "(48, 32)" in message and "(64, 32)" in message
    assert "set d_ff to 48" in message


def test_wrong_width_asks_for_d_model():
    with pytest.raises(CheckpointError, match=r"shared.weight: checkpoint \(60, 48\) vs model \(60, 32\): set d_model"):
        load_vlt5_epoch30(tiny(), released_layout(tiny(d_model=48).state_dict()))


def test_wrong_vocabulary_names_32200_and_vocab_rows():
    with pytest.raises(CheckpointError, match=r"70-row vocabulary but the model has 60 rows .*32200.*vocab_rows=70"):
        load_vlt5_epoch30(tiny(), released_layout(tiny(vocab=70).state_dict()))


def test_missing_and_unexpected_layers():
    with pytest.raises(CheckpointError, match=r"lacks \d+ key\(s\).*first 'encoder.block.1.*1 encoder / 2 decoder"):
        load_vlt5_epoch30(tiny(), released_layout(tiny(num_layers=1, num_decoder_layers=2).state_dict()))
    with pytest.raises(CheckpointError, match=r"key\(s\) the model lacks, first 'encoder.block.2"):
        load_vlt5_epoch30(tiny(), released_layout(tiny(num_layers=3, num_decoder_layers=2).state_dict()))


def test_blip_checkpoint_is_recognised():
    state = {
        "module.visual_encoder.blocks.0.attn.qkv.weight": torch.zeros(3, 3),
        "text_decoder.cls.weight": torch.zeros(2),
    }
    with pytest.raises(CheckpointError, match=r"looks like a BLIP checkpoint.*family 'blip'"):
        load_vlt5_epoch30(tiny(), state)
    with pytest.raises(CheckpointError, match=r"is not a T5/VL-T5 checkpoint"):
        load_vlt5_epoch30(tiny(), {"fc.weight": torch.zeros(2, 2)})


def test_unreadable_files(tmp_path):
    with pytest.raises(CheckpointError, match=r"checkpoint file not found"):
        load_vlt5_epoch30(tiny(), tmp_path / "Epoch30.pth")
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"cannot read checkpoint .*bad.pth"):
        load_vlt5_epoch30(tiny(), bad)


def save_t5(tmp_path, vocab: int = 50, **overrides) -> tuple[str, T5ForConditionalGeneration]:
    torch.manual_seed(5)
    t5 = T5ForConditionalGeneration(T5Config(**{**SIZES, **overrides}, vocab_size=vocab)).eval()
    folder = tmp_path / "t5"
    t5.save_pretrained(folder)
    return str(folder), t5


def test_hf_t5_folder_loads_with_resized_vocabulary_and_random_visual_embedding(tmp_path):
    folder, t5 = save_t5(tmp_path)
    model = tiny()
    visual_before = {k: v.clone() for k, v in model.encoder.visual_embedding.state_dict().items()}
    box_rows_before = model.shared.weight[50:].detach().clone()
    load_hf_t5(model, folder)
    assert model.shared.weight.shape == (60, 32)
    torch.testing.assert_close(model.shared.weight[:50], t5.shared.weight)
    torch.testing.assert_close(model.shared.weight[50:], box_rows_before)
    for key, value in model.encoder.visual_embedding.state_dict().items():
        torch.testing.assert_close(value, visual_before[key])
    x = {k: v for k, v in inputs().items() if k in ("input_ids", "decoder_input_ids")}
    with torch.no_grad():
        torch.testing.assert_close(model(**x).logits[..., :50], t5(**x).logits)  # text-only VL-T5 == the T5


def test_hf_folder_of_another_family_or_width(tmp_path):
    BertConfig(vocab_size=10, hidden_size=8, num_hidden_layers=1, num_attention_heads=2).save_pretrained(tmp_path)
    with pytest.raises(CheckpointError, match=r"looks like a bert checkpoint"):
        load_hf_t5(tiny(), str(tmp_path))
    folder, _ = save_t5(tmp_path, d_model=48)
    with pytest.raises(CheckpointError, match=r"has d_model 48.*use the checkpoint's sizes"):
        load_hf_t5(tiny(), folder)
    with pytest.raises(CheckpointError, match=r"cannot load Hugging Face T5 checkpoint"):
        load_hf_t5(tiny(), str(tmp_path / "missing"))


def test_hf_t5_load_report_lists_what_kept_its_initialisation(tmp_path):
    folder, _ = save_t5(tmp_path)
    report = load_hf_t5(tiny(), folder).to_json()
    assert report["refused"] == [] and report["copied"] > 0 and report["unused"] == 0
    assert report["grown_rows"] == ["shared.weight[50:60]"]  # the box-order rows after T5's vocabulary
    assert report["allowed_missing"] and all(
        n.startswith("encoder.visual_embedding.") for n in report["allowed_missing"]
    )


def test_hf_t5_with_more_rows_or_layers_than_the_model_is_refused(tmp_path):
    folder, _ = save_t5(tmp_path, vocab=70)
    with pytest.raises(CheckpointError, match="70-row vocabulary but the model only 60 rows") as err:
        load_hf_t5(tiny(), folder)
    assert "\n" not in str(err.value)
    folder, _ = save_t5(tmp_path, num_layers=3)
    with pytest.raises(CheckpointError, match=r"could not copy .*encoder\.block\.2\..* has no place in the model"):
        load_hf_t5(tiny(), folder)


def test_epoch30_load_reports_every_tensor_copied(tmp_path):
    report = load_vlt5_epoch30(tiny(seed=1), released_layout(tiny(seed=0).state_dict())).to_json()
    assert report["copied"] > 0 and report["refused"] == report["allowed_missing"] == report["grown_rows"] == []
