"""Tiny checkpoints in the layouts their authors released, sized like the rehearsal preset's teachers.

- ``Epoch30.pth`` (j-min/VL-T5): ``torch.save`` of the DDP-wrapped model's state dict: ``module.`` prefixes, the
  encoder as ``vis_encoder.``, every tied alias of ``shared`` (the embed_tokens, ``lm_head``, the visual box-order
  embedding) and transformers 4.2.1's unused decoder cross-attention relative bias.
- ``model_base_capfilt_large.pth`` (salesforce/BLIP): ``{"model": state_dict}`` of ``BLIP_Pretrain`` in BLIP's own
  names: a timm ViT (``visual_encoder.blocks.N.attn.qkv`` ...), the BERT text encoder and decoder, and what only
  pre-training has (momentum encoders, contrastive projections and queues, the ITM head, the temperature).
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from amad_suite.rehearsal.files import BOXES, FEATURE_DIM

# transformers' BLIP vision names -> BLIP's timm ViT names (the inverse of amad.models.blip.original.VIT_RENAMES)
HF_TO_ORIGINAL = (
    (r"^vision_model\.embeddings\.class_embedding$", "visual_encoder.cls_token"),
    (r"^vision_model\.embeddings\.position_embedding$", "visual_encoder.pos_embed"),
    (r"^vision_model\.embeddings\.patch_embedding\.", "visual_encoder.patch_embed.proj."),
    (r"^vision_model\.post_layernorm\.", "visual_encoder.norm."),
    (r"^vision_model\.encoder\.layers\.(\d+)\.self_attn\.qkv\.", r"visual_encoder.blocks.\1.attn.qkv."),
    (r"^vision_model\.encoder\.layers\.(\d+)\.self_attn\.projection\.", r"visual_encoder.blocks.\1.attn.proj."),
    (r"^vision_model\.encoder\.layers\.(\d+)\.layer_norm([12])\.", r"visual_encoder.blocks.\1.norm\2."),
    (r"^vision_model\.encoder\.layers\.(\d+)\.mlp\.", r"visual_encoder.blocks.\1.mlp."),
)
EMBED_DIM, QUEUE = 16, 8  # BLIP_Pretrain's contrastive embedding width (256) and queue length (57600), shrunk


def _bytes(obj: Any) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _teacher_size(params: Mapping[str, Any], setups: tuple[str, ...], family: str) -> dict:
    """The one size the given teacher setups share (they all start from the same released checkpoint)."""
    from amad.models.sizes import resolve_size

    sizes = [resolve_size(params["teacher"]["setups"][s]["size"], family) for s in setups]
    if any(size != sizes[0] for size in sizes):
        raise ValueError(f"the rehearsal teachers {setups} must share one size: they load one released checkpoint")
    return sizes[0]


def vlt5_released_layout(state: Mapping[str, torch.Tensor], num_heads: int) -> dict[str, torch.Tensor]:
    """A VL-T5 state dict as j-min/VL-T5 saved ``Epoch30.pth``."""
    state = dict(state)
    state["encoder.visual_embedding.obj_order_embedding.weight"] = state["shared.weight"]
    state["decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight"] = torch.zeros(32, num_heads)
    out = {}
    for key, value in state.items():
        if key.startswith("encoder."):
            key = "vis_encoder." + key[len("encoder.") :]
        out["module." + key] = value
    return out


def epoch30(params: Mapping[str, Any], t5_tokenizer: Path, seed: int) -> bytes:
    """A tiny ``Epoch30.pth`` for the rehearsal's VL-T5 teachers (their size; t5-base's tokenizer + 100 rows)."""
    from amad.data.tokenizer import load_tokenizer
    from amad.models.vlt5.encoder import VLT5ForConditionalGeneration
    from amad.models.vlt5.visual import vlt5_config

    size = _teacher_size(params, ("vlt5-vqa", "vlt5-caption", "vlt5-translation"), "vlt5")
    size.update(feat_dim=FEATURE_DIM, n_boxes=max(int(size["n_boxes"]), BOXES))  # as fit_size adapts it
    torch.manual_seed(seed)
    model = VLT5ForConditionalGeneration(vlt5_config(size, load_tokenizer(t5_tokenizer)))
    return _bytes(vlt5_released_layout(model.state_dict(), int(size["num_heads"])))


def blip_original_names(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """transformers' BLIP state dict -> BLIP's own names (text keys are the same in both)."""
    out = {}
    for key, value in state.items():
        for pattern, replacement in HF_TO_ORIGINAL:
            key, hits = re.subn(pattern, replacement, key)
            if hits:
                break
        out[key] = value
    return out


def blip_pretrain(params: Mapping[str, Any], bert_vocab: Path, seed: int) -> bytes:
    """A tiny ``model_base_capfilt_large.pth`` sized like the rehearsal's BLIP VQA teacher."""
    from transformers import BlipForQuestionAnswering

    from amad.data.tokenizer import build_blip_tokenizer
    from amad.models.blip.checkpoint import blip_config

    size = _teacher_size(params, ("blip-vqa",), "blip")
    size["vision"]["image_size"] = int(params["features"]["image_size"])  # as fit_size adapts it
    tokenizer = build_blip_tokenizer(bert_vocab)
    torch.manual_seed(seed)
    model = BlipForQuestionAnswering._from_config(blip_config("vqa", size, tokenizer), attn_implementation="eager")
    state = blip_original_names(model.state_dict())
    hidden = int(size["text"]["hidden_size"])
    extra = {f"{m}_m.{k[len(m) + 1 :]}": v.clone() for k, v in state.items() for m in ("visual_encoder", "text_encoder")
             if k.startswith(m + ".")}  # fmt: skip
    for proj, width in (("vision_proj", int(size["vision"]["hidden_size"])), ("text_proj", hidden)):
        for suffix in ("", "_m"):
            extra[f"{proj}{suffix}.weight"] = torch.randn(EMBED_DIM, width) * 0.02
            extra[f"{proj}{suffix}.bias"] = torch.zeros(EMBED_DIM)
    extra |= {"itm_head.weight": torch.randn(2, hidden) * 0.02, "itm_head.bias": torch.zeros(2)}
    extra |= {"temp": torch.tensor(0.07), "queue_ptr": torch.zeros(1, dtype=torch.long)}
    extra |= {"image_queue": torch.randn(EMBED_DIM, QUEUE), "text_queue": torch.randn(EMBED_DIM, QUEUE)}
    for module in ("text_encoder", "text_decoder.bert"):  # BERT's position_ids buffer, saved by BLIP's transformers
        extra[f"{module}.embeddings.position_ids"] = torch.arange(512).expand(1, -1).clone()
    return _bytes({"model": state | extra})
