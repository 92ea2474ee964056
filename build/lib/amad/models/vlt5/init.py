"""T5's weight initialisation, applied to every module of a VL-T5 built from scratch.

transformers 5.24 treats any model class defined outside ``transformers.*`` as custom code and then skips
``_init_weights`` for modules without parameters of their own (``T5Attention``, ``T5DenseActDense``): their Linear
children get the generic ``normal(0, initializer_factor)`` = N(0, 1) instead of T5's scaled scheme. A VL-T5 encoder
built that way has q std 1.0 instead of (d_model·d_kv)^-0.5 and one-hot self-attention from step 0 (issue 12, B1).

So we do not rely on that path at all: :func:`init_t5_weights` walks every module and applies T5's scheme
(``T5PreTrainedModel._init_weights`` in transformers 5.24, restated with ``torch.nn.init``):

=============================  ==================================================
module                         initialisation (factor = ``initializer_factor``)
=============================  ==================================================
shared token embedding         N(0, factor)
untied ``lm_head``             N(0, factor)
T5LayerNorm weight             factor
attention q                    N(0, factor·(d_model·d_kv)^-0.5)
attention k, v                 N(0, factor·d_model^-0.5)
attention o                    N(0, factor·(heads·d_kv)^-0.5)
relative position bias         N(0, factor·d_model^-0.5)
feed-forward wi / wo           N(0, factor·d_model^-0.5) / N(0, factor·d_ff^-0.5)
VL-T5 visual Linears           N(0, factor·in_features^-0.5), bias 0 (T5's fan-in rule, as ``wi``)
VL-T5 image-order embedding    N(0, factor)
=============================  ==================================================

``REFERENCE_STD`` exposes the same table for tests and diagnostics.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers.models.t5.modeling_t5 import T5Attention, T5DenseActDense, T5DenseGatedActDense, T5LayerNorm

from amad.models.vlt5.visual import FAN_IN_INIT


def reference_std(config: Any) -> dict[str, float]:
    """The std T5's scheme gives each parameter group of a model with ``config`` (a T5Config)."""
    f, d, kv, h, ff = config.initializer_factor, config.d_model, config.d_kv, config.num_heads, config.d_ff
    return {
        "shared": f,
        "q": f * (d * kv) ** -0.5,
        "k": f * d**-0.5,
        "v": f * d**-0.5,
        "o": f * (h * kv) ** -0.5,
        "relative_attention_bias": f * d**-0.5,
        "wi": f * d**-0.5,
        "wo": f * ff**-0.5,
    }


@torch.no_grad()
def init_t5_weights(model: nn.Module, config: Any) -> None:
    """Initialise every parameter of ``model`` (a VL-T5 or any T5 stack) with T5's scheme, in module order.

    Args:
        model: the module tree to initialise in place.
        config: its T5Config (sizes and ``initializer_factor``).
    """
    std = reference_std(config)
    factor = config.initializer_factor
    for module in model.modules():
        if isinstance(module, T5LayerNorm):
            nn.init.constant_(module.weight, factor)
        elif isinstance(module, T5Attention):
            for name in ("q", "k", "v", "o"):
                nn.init.normal_(getattr(module, name).weight, mean=0.0, std=std[name])
            if module.has_relative_attention_bias:
                nn.init.normal_(module.relative_attention_bias.weight, mean=0.0, std=std["relative_attention_bias"])
        elif isinstance(module, T5DenseActDense):
            nn.init.normal_(module.wi.weight, mean=0.0, std=std["wi"])
            nn.init.normal_(module.wo.weight, mean=0.0, std=std["wo"])
        elif isinstance(module, T5DenseGatedActDense):
            nn.init.normal_(module.wi_0.weight, mean=0.0, std=std["wi"])
            nn.init.normal_(module.wi_1.weight, mean=0.0, std=std["wi"])
            nn.init.normal_(module.wo.weight, mean=0.0, std=std["wo"])
    for module in model.modules():  # what T5's table leaves to the model: embeddings and the visual Linears
        if isinstance(module, nn.Linear) and getattr(module, FAN_IN_INIT, False):
            nn.init.normal_(module.weight, mean=0.0, std=factor * module.in_features**-0.5)
            nn.init.zeros_(module.bias)
    shared = getattr(model, "shared", None)
    if isinstance(shared, nn.Embedding):
        nn.init.normal_(shared.weight, mean=0.0, std=std["shared"])
    lm_head = getattr(model, "lm_head", None)
    if isinstance(lm_head, nn.Linear) and lm_head.weight is not getattr(shared, "weight", None):
        nn.init.normal_(lm_head.weight, mean=0.0, std=std["shared"])
    visual = getattr(getattr(model, "encoder", model), "visual_embedding", None)
    if visual is not None:
        nn.init.normal_(visual.img_order_embedding.weight, mean=0.0, std=factor)
