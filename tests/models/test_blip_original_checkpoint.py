"""BLIP's original .pth checkpoints (salesforce/BLIP names) into transformers' BLIP: the key renaming against a
golden table, a synthetic pre-training checkpoint in the original layout loaded for VQA and captions, and the flag
on checkpoints that have seen the Karpathy test images."""

from __future__ import annotations

import pytest
import torch
from transformers import BlipForConditionalGeneration, BlipForQuestionAnswering

from amad.errors import CheckpointError
from amad.models.blip.checkpoint import blip_config, karpathy_test_leak, load_pretrained
from amad.models.blip.original import rename_key, to_hf_names

# BLIP (models/vit.py, med.py) -> transformers (modeling_blip.py); the renaming transformers' own
# convert_blip_original_pytorch_to_hf.py applies.
GOLDEN = {
    "visual_encoder.cls_token": "vision_model.embeddings.class_embedding",
    "visual_encoder.pos_embed": "vision_model.embeddings.position_embedding",
    "visual_encoder.patch_embed.proj.weight": "vision_model.embeddings.patch_embedding.weight",
    "visual_encoder.patch_embed.proj.bias": "vision_model.embeddings.patch_embedding.bias",
    "visual_encoder.blocks.0.norm1.weight": "vision_model.encoder.layers.0.layer_norm1.weight",
    "visual_encoder.blocks.0.attn.qkv.weight": "vision_model.encoder.layers.0.self_attn.qkv.weight",
    "visual_encoder.blocks.0.attn.proj.bias": "vision_model.encoder.layers.0.self_attn.projection.bias",
    "visual_encoder.blocks.11.norm2.bias": "vision_model.encoder.layers.11.layer_norm2.bias",
    "visual_encoder.blocks.11.mlp.fc1.weight": "vision_model.encoder.layers.11.mlp.fc1.weight",
    "visual_encoder.blocks.3.mlp.fc2.bias": "vision_model.encoder.layers.3.mlp.fc2.bias",
    "visual_encoder.norm.weight": "vision_model.post_layernorm.weight",
    "text_encoder.encoder.layer.0.crossattention.self.query.weight": (
        "text_encoder.encoder.layer.0.crossattention.self.query.weight"
    ),
    "text_decoder.cls.predictions.transform.LayerNorm.bias": "text_decoder.cls.predictions.transform.LayerNorm.bias",
    "text_decoder.bert.embeddings.word_embeddings.weight": "text_decoder.bert.embeddings.word_embeddings.weight",
}


def test_key_renaming_matches_the_golden_table():
    assert {key: rename_key(key) for key in GOLDEN} == GOLDEN


SIZE = {
    "family": "blip",
    "vision": {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 64,
               "image_size": 32, "patch_size": 16},
    "text": {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 64},
    "dropout": 0.0,
}  # fmt: skip


class Tok:
    """The few tokenizer fields blip_config reads: 40 rows, [PAD]=0, [SEP]=2, [DEC]=38, [ENC]=39."""

    bos_token_id, sep_token_id, eos_token_id, pad_token_id, cls_token_id = 38, 2, 2, 0, 1

    def get_vocab(self) -> dict[str, int]:
        return {"[PAD]": 0, "[CLS]": 1, "[SEP]": 2, "[DEC]": 38, "[ENC]": 39}

    def __len__(self) -> int:
        return 40


def _original_pretrain(seed: int = 0) -> dict[str, torch.Tensor]:
    """A BLIP_Pretrain state dict in BLIP's names, written out by hand from a transformers VQA model's tensors."""
    torch.manual_seed(seed)
    hf = BlipForQuestionAnswering._from_config(blip_config("vqa", SIZE, Tok()), attn_implementation="eager")
    inverse = {v: k for k, v in GOLDEN.items()}
    state = {}
    for key, value in hf.state_dict().items():
        if key.startswith("vision_model.encoder.layers."):
            layer, rest = key.removeprefix("vision_model.encoder.layers.").split(".", 1)
            rest = rest.replace("self_attn.projection", "attn.proj").replace("self_attn.qkv", "attn.qkv")
            rest = rest.replace("layer_norm1", "norm1").replace("layer_norm2", "norm2")
            key = f"visual_encoder.blocks.{layer}.{rest}"
        else:
            key = inverse.get(key, key)
            key = key.replace("vision_model.embeddings.patch_embedding.", "visual_encoder.patch_embed.proj.")
            key = key.replace("vision_model.post_layernorm.", "visual_encoder.norm.")
        state[key] = value.clone()
    for key in list(state):  # what only pre-training has
        if key.startswith(("visual_encoder.", "text_encoder.")):
            state[key.replace("_encoder.", "_encoder_m.", 1)] = state[key].clone()
    state |= {"vision_proj.weight": torch.randn(16, 32), "text_proj.bias": torch.zeros(16), "temp": torch.tensor(0.07)}
    state |= {"itm_head.weight": torch.randn(2, 32), "image_queue": torch.randn(16, 8), "queue_ptr": torch.zeros(1)}
    state["text_encoder.embeddings.position_ids"] = torch.arange(512)[None]
    return state


@pytest.mark.parametrize(
    ("task", "cls"), [("vqa", BlipForQuestionAnswering), ("caption", BlipForConditionalGeneration)]
)
def test_pretraining_checkpoint_fills_every_tensor_of_both_tasks(tmp_path, task, cls):
    state = _original_pretrain()
    path = tmp_path / "model_base_capfilt_large.pth"
    torch.save({"model": state, "config": {"vit": "base"}}, path)
    model = cls._from_config(blip_config(task, SIZE, Tok()), attn_implementation="eager")
    report = load_pretrained(model, str(path), task)
    assert report["refused"] == [] and report["saw_test_split"] is None
    got = model.state_dict()
    torch.testing.assert_close(got["vision_model.encoder.layers.1.self_attn.qkv.weight"],
                               state["visual_encoder.blocks.1.attn.qkv.weight"])  # fmt: skip
    torch.testing.assert_close(got["vision_model.embeddings.position_embedding"], state["visual_encoder.pos_embed"])
    torch.testing.assert_close(got["text_decoder.cls.predictions.decoder.weight"],
                               state["text_decoder.cls.predictions.decoder.weight"])  # fmt: skip
    converted, dropped = to_hf_names(state, task)
    assert "temp" in dropped and "visual_encoder_m.cls_token" in dropped
    assert ("text_encoder.embeddings.word_embeddings.weight" in dropped) == (task == "caption")  # no question encoder
    assert "text_encoder.embeddings.position_ids" in dropped and set(converted).isdisjoint(dropped)


def test_unknown_original_key_is_refused_in_one_line(tmp_path):
    state = _original_pretrain() | {"visual_encoder.blocks.0.ls1.gamma": torch.ones(32)}
    path = tmp_path / "model.pth"
    torch.save({"model": state}, path)
    model = BlipForQuestionAnswering._from_config(blip_config("vqa", SIZE, Tok()), attn_implementation="eager")
    with pytest.raises(CheckpointError, match=r"visual_encoder\.blocks\.0\.ls1\.gamma has no place") as info:
        load_pretrained(model, str(path), "vqa")
    assert "\n" not in str(info.value)


def test_not_an_original_checkpoint(tmp_path):
    path = tmp_path / "model.pth"
    torch.save({"model": {"shared.weight": torch.zeros(2, 2)}}, path)
    model = BlipForQuestionAnswering._from_config(blip_config("vqa", SIZE, Tok()), attn_implementation="eager")
    with pytest.raises(CheckpointError, match="not a BLIP checkpoint in the original names"):
        load_pretrained(model, str(path), "vqa")


@pytest.mark.parametrize(
    ("source", "leaky"),
    [
        ("Salesforce/blip-vqa-base", True),
        ("Salesforce/blip-vqa-capfilt-large", True),
        ("data/raw/checkpoints/blip/model_base_vqa_capfilt_large.pth", True),
        ("/ckpt/model_vqa.pth", True),
        ("data/raw/checkpoints/blip/model_base_capfilt_large.pth", False),
        ("Salesforce/blip-image-captioning-base", False),
    ],
)
def test_checkpoints_that_saw_val2014_are_named(source, leaky):
    assert (karpathy_test_leak(source) is not None) == leaky
