"""BLIP's original checkpoints (salesforce/BLIP ``.pth`` files) in transformers' BLIP names.

The released files (``model_base_capfilt_large.pth`` and the other pre-training and fine-tuned checkpoints) hold
``{"model": state_dict}`` in BLIP's own names: a timm-style ViT (``visual_encoder.blocks.N.attn.qkv``, ``cls_token``,
``pos_embed``, ``patch_embed.proj``, ``norm``), ``text_encoder.*`` and ``text_decoder.{bert,cls}.*`` in BERT's
names (which transformers' port kept), and, in pre-training checkpoints, modules that no fine-tuned model has: the
momentum encoders (``*_m``), the contrastive projections and queues, the ITM head and the temperature.

:func:`to_hf_names` renames the ViT keys to ``vision_model.*`` (the same renaming as transformers'
``convert_blip_original_pytorch_to_hf.py``, written here as one explicit table) and drops what the task's model has
no place for. BLIP's own fine-tuning starts from the pre-training checkpoint the same way: ``blip_vqa`` takes the
ViT, the text encoder and the text decoder; ``blip_decoder`` (captions) the ViT and the text decoder.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import torch

from amad.errors import CheckpointError

# BLIP ViT names -> transformers' BlipVisionModel names (anchored; the first match wins).
VIT_RENAMES = (
    (r"^visual_encoder\.cls_token$", "vision_model.embeddings.class_embedding"),
    (r"^visual_encoder\.pos_embed$", "vision_model.embeddings.position_embedding"),
    (r"^visual_encoder\.patch_embed\.proj\.", "vision_model.embeddings.patch_embedding."),
    (r"^visual_encoder\.norm\.", "vision_model.post_layernorm."),
    (r"^visual_encoder\.blocks\.(\d+)\.attn\.qkv\.", r"vision_model.encoder.layers.\1.self_attn.qkv."),
    (r"^visual_encoder\.blocks\.(\d+)\.attn\.proj\.", r"vision_model.encoder.layers.\1.self_attn.projection."),
    (r"^visual_encoder\.blocks\.(\d+)\.norm([12])\.", r"vision_model.encoder.layers.\1.layer_norm\2."),
    (r"^visual_encoder\.blocks\.(\d+)\.mlp\.(fc[12])\.", r"vision_model.encoder.layers.\1.mlp.\2."),
)
# Top-level modules of BLIP_Pretrain that fine-tuned models do not have (blip_pretrain.py).
PRETRAIN_ONLY = (
    "visual_encoder_m",
    "text_encoder_m",
    "vision_proj",
    "vision_proj_m",
    "text_proj",
    "text_proj_m",
    "itm_head",
    "temp",
    "image_queue",
    "text_queue",
    "queue_ptr",
    "idx_queue",
)
# Modules each task's transformers model has (BlipForQuestionAnswering / BlipForConditionalGeneration).
TASK_MODULES = {
    "vqa": ("visual_encoder", "text_encoder", "text_decoder"),
    "caption": ("visual_encoder", "text_decoder"),
}


def read_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a BLIP ``.pth`` (``{"model": state_dict}``, or a bare state dict), loaded with weights_only.

    Raises:
        CheckpointError: the file is missing, unreadable, or holds no state dict.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"BLIP checkpoint {path} not found: run the download stage or place the file there")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated file, a pickle of arbitrary objects, ...
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise CheckpointError(
            f"cannot read BLIP checkpoint {path} ({first}): delete it and download it again"
        ) from None
    state = data.get("model", data) if isinstance(data, Mapping) else None
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{path} holds no state dict (expected {{'model': {{name: tensor}}}}): re-download it")
    return {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}


def is_original(keys: list[str] | tuple[str, ...]) -> bool:
    """True when a state dict's keys are in BLIP's original names (a ``visual_encoder.`` ViT)."""
    return any(k.startswith("visual_encoder.") for k in keys)


def rename_key(key: str) -> str:
    """One original key in transformers' names (text keys are unchanged; an unknown ViT key is returned as is)."""
    for pattern, replacement in VIT_RENAMES:
        renamed, hits = re.subn(pattern, replacement, key)
        if hits:
            return renamed
    return key


def to_hf_names(state: Mapping[str, torch.Tensor], task: str) -> tuple[dict[str, torch.Tensor], list[str]]:
    """An original BLIP state dict -> (the tensors ``task``'s transformers model takes, renamed; the dropped keys).

    Dropped: pre-training-only modules (PRETRAIN_ONLY), modules the task's model lacks (the text encoder for
    captions) and ``position_ids`` buffers (not saved by transformers). Anything else is kept, so a key nobody
    knows reaches the strict copy and is refused there.

    Raises:
        CheckpointError: the task is not vqa or caption, or the state dict is not in BLIP's original names.
    """
    if task not in TASK_MODULES:
        raise CheckpointError(f"BLIP checkpoints convert for tasks vqa and caption, not {task!r}")
    if not is_original(list(state)):
        first = next(iter(state), "<none>")
        raise CheckpointError(
            f"not a BLIP checkpoint in the original names (no visual_encoder.* key; first key {first!r}): pass "
            "salesforce/BLIP's .pth, or a transformers BLIP folder"
        )
    out: dict[str, torch.Tensor] = {}
    dropped: list[str] = []
    for key, value in state.items():
        module = key.split(".", 1)[0]
        unused = module in PRETRAIN_ONLY or key.endswith(".position_ids")
        if unused or (module in TASK_MODULES["vqa"] and module not in TASK_MODULES[task]):
            dropped.append(key)
            continue
        out[rename_key(key)] = value
    return out, dropped
