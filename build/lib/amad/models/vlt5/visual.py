"""VL-T5's config (from a size dict) and visual embedding (regions -> d_model vectors), on transformers 5.24 T5.

Follows j-min/VL-T5 ``src/modeling_t5.py`` ``VisualEmbedding`` with its defaults (``individual_vis_layer_norm``,
``use_vis_layer_norm``, ``use_vis_order_embedding`` all True). Parameter names match the released checkpoint:
``feat_embedding.{0,1}``, ``absolute_vis_pos_embedding.{0,1}``, ``img_order_embedding``. The box-order embedding is
the model's shared token table (rows ``vocab_rows - k - 1``); it is passed in at call time rather than registered
here, so the state dict holds it once, as ``shared.weight``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from huggingface_hub.dataclasses import strict
from torch import nn
from transformers import AutoConfig, T5Config
from transformers.models.t5.modeling_t5 import T5LayerNorm

from amad.errors import ConfigError

# VL-T5's tokenizer appends 100 <vis_extra_id_*> to T5's 32100 tokens (32200 rows).
VIS_EXTRA_IDS = 100
# Marks the visual Linears for the model's ``_init_weights`` (fan-in normal init, as T5's feed-forward ``wi``).
FAN_IN_INIT = "_amad_fan_in_init"


@strict
class VLT5Config(T5Config):
    """T5Config plus VL-T5's visual sizes.

    feat_dim: region feature width (2048 for the BUTD Faster R-CNN features).
    pos_dim: box coordinates per region (4: x1, y1, x2, y2 normalised); the embedding reads pos_dim + 1 inputs.
    n_images: rows of the image-order embedding (2 in VL-T5, for NLVR2's image pairs; we always use image 0).
    n_boxes: regions per image; the last ``n_boxes`` vocabulary rows serve as the box-order embedding.
    """

    model_type = "vlt5"

    feat_dim: int = 2048
    pos_dim: int = 4
    n_images: int = 2
    n_boxes: int = 36


def vocab_rows(tokenizer: Any, size: Mapping[str, Any]) -> int:
    """Embedding rows: the tokenizer's tokens plus rows reserved at the end for the box-order embedding.

    ``size["vocab_rows"]`` wins; a VL-T5 tokenizer (with ``<vis_extra_id_*>``) needs no extra rows; a T5
    SentencePiece tokenizer (with ``<extra_id_*>``) gets VL-T5's 100 rows (t5-base -> 32200); otherwise (mini
    tokenizers) ``n_boxes`` rows are added.
    """
    vocab = tokenizer.get_vocab()
    n = len(tokenizer)
    if "vocab_rows" in size:
        rows = int(size["vocab_rows"])
    elif "<vis_extra_id_0>" in vocab:
        rows = n
    elif "<extra_id_0>" in vocab:
        rows = n + VIS_EXTRA_IDS
    else:
        rows = n + int(size["n_boxes"])
    reserved = rows - n + sum(1 for t in vocab if t.startswith("<vis_extra_id_"))
    n_boxes = int(size["n_boxes"])
    if reserved < n_boxes:
        raise ConfigError(
            f"vocab_rows {rows} reserves {reserved} box-order rows after the {n} tokens but n_boxes is {n_boxes}: "
            f"set vocab_rows to at least {rows + n_boxes - reserved}"
        )
    return rows


def vlt5_config(size: Mapping[str, Any], tokenizer: Any) -> VLT5Config:
    """A VLT5Config from a vlt5 size dict (see ``amad.models.sizes``) and the tokenizer's special ids."""
    for key in ("pad_token_id", "eos_token_id"):
        if getattr(tokenizer, key, None) is None:
            raise ConfigError(f"the tokenizer has no {key.removesuffix('_id')} token: VL-T5 needs <pad> and </s>")
    return VLT5Config(
        vocab_size=vocab_rows(tokenizer, size),
        d_model=int(size["d_model"]),
        d_kv=int(size["d_kv"]),
        d_ff=int(size["d_ff"]),
        num_layers=int(size["num_layers"]),
        num_decoder_layers=int(size["num_decoder_layers"]),
        num_heads=int(size["num_heads"]),
        dropout_rate=float(size["dropout"]),
        feat_dim=int(size["feat_dim"]),
        n_boxes=int(size["n_boxes"]),
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
    )


def vlt5_box_area(boxes: torch.Tensor) -> torch.Tensor:
    """VL-T5's ``get_area``, quirk included: ``(b[..., 3] - b[..., 2]) * (b[..., 1] - b[..., 0])``.

    VL-T5 documents its boxes as (x1, x2, y1, y2), but its loaders pass (x1, y1, x2, y2). With those boxes the
    "area" it feeds the model is ``(y2 - x2) * (y1 - x1)``, not the box area. The released weights were trained on
    that value, so we reproduce it exactly.

    Args:
        boxes: (B, N, 4) normalised x1, y1, x2, y2.

    Returns:
        (B, N) the quirky "area".
    """
    height = boxes[..., 3] - boxes[..., 2]  # (B, N): y2 - x2
    width = boxes[..., 1] - boxes[..., 0]  # (B, N): y1 - x1
    return height * width


class VisualEmbedding(nn.Module):
    """feat Linear+LN + box Linear+LN (5 inputs) + image-order embedding + box-order rows of the token table."""

    def __init__(self, config: VLT5Config) -> None:
        super().__init__()
        d_model, eps = config.d_model, config.layer_norm_epsilon
        self.feat_embedding = nn.Sequential(nn.Linear(config.feat_dim, d_model), T5LayerNorm(d_model, eps=eps))
        self.absolute_vis_pos_embedding = nn.Sequential(
            nn.Linear(config.pos_dim + 1, d_model), T5LayerNorm(d_model, eps=eps)
        )
        self.img_order_embedding = nn.Embedding(config.n_images, d_model)
        for seq in (self.feat_embedding, self.absolute_vis_pos_embedding):
            setattr(seq[0], FAN_IN_INIT, True)

    def forward(self, feats: torch.Tensor, boxes: torch.Tensor, obj_order_table: nn.Embedding) -> torch.Tensor:
        """Embed N regions of one image per example.

        Args:
            feats: (B, N, feat_dim) region features.
            boxes: (B, N, 4) normalised x1, y1, x2, y2.
            obj_order_table: the shared token embedding; box k reads row ``num_embeddings - k - 1``.

        Returns:
            (B, N, d_model) the summed visual embedding.
        """
        n = feats.shape[1]
        dtype = self.feat_embedding[0].weight.dtype
        feats, boxes = feats.to(dtype), boxes.to(dtype)
        feat = self.feat_embedding(feats)  # (B, N, F) -> (B, N, D)
        area = vlt5_box_area(boxes).unsqueeze(-1)  # (B, N, 1)
        pos = self.absolute_vis_pos_embedding(torch.cat([boxes, area], dim=-1))  # (B, N, 5) -> (B, N, D)
        img_ids = torch.zeros(1, n, dtype=torch.long, device=feats.device)  # (1, N): image 0
        obj_ids = obj_order_table.num_embeddings - torch.arange(n, device=feats.device).unsqueeze(0) - 1  # (1, N)
        img = self.img_order_embedding(img_ids)  # (1, N, D)
        obj = obj_order_table(obj_ids)  # (1, N, D)
        return feat + pos + img + obj  # (B, N, D)


AutoConfig.register(VLT5Config.model_type, VLT5Config, exist_ok=True)
