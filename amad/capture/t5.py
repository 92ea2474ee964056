"""T5 capture backend (transformers 5.24): a recording attention function for the selected layers only.

``T5Attention.forward`` picks its attention function on every call from ``self.config._attn_implementation``
through ``ALL_ATTENTION_FUNCTIONS``. Every T5 attention module of a stack shares one config object, so to switch a
single layer we give that module a shallow copy of the config whose implementation is ``"amad_record"`` and which
carries the recording callback; on exit the module gets the original config object back. Other layers keep their
implementation (``sdpa`` by default in 5.24, where ``output_attentions`` silently returns empty tuples).

The recording function computes exactly what ``eager_attention_forward`` computes (scores, + position bias,
+ mask, softmax, dropout, @ value) and hands the softmax output to the recorder *before* dropout. It accepts the
mask formats the T5 stack builds for eager (additive float) and sdpa (bool, or None with a causal decoder).
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.models.t5.modeling_t5 import T5Attention, T5Block

from amad.capture.circuits import value_circuits
from amad.capture.spec import Layout
from amad.errors import CaptureError

RECORD_IMPLEMENTATION = "amad_record"
_RECORDER_ATTR = "amad_attention_recorder"


def record_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    position_bias: torch.Tensor | None = None,
    **kwargs: object,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Eager T5 attention that records the pre-dropout probabilities.

    Args:
        module: the calling ``T5Attention``; its config carries the recorder.
        query: (B, H, Q, Dh); key, value: (B, H, K, Dh).
        attention_mask: None, bool (B, 1, Q|1, K) with True = attend, or additive float of that shape.
        scaling: score scale (T5 passes 1.0).
        dropout: dropout probability on the probabilities (0 in eval mode).
        position_bias: (1|B, H, Q, K) relative position bias, added before the softmax.

    Returns:
        attn_output (B, Q, H, Dh) and the post-dropout weights (B, H, Q, K), as ``eager_attention_forward``.
    """
    recorder = getattr(module.config, _RECORDER_ATTR, None)
    if recorder is None:
        raise CaptureError(
            f"attention implementation {RECORD_IMPLEMENTATION!r} is only usable inside amad.capture.capture_attention"
        )
    if attention_mask is not None and not isinstance(attention_mask, torch.Tensor):
        raise CaptureError(
            f"cannot record T5 attention with a {type(attention_mask).__name__} mask: load the model with "
            "attn_implementation='eager' or 'sdpa'"
        )
    if scaling is None:
        scaling = query.size(-1) ** -0.5
    scores = torch.matmul(query, key.transpose(2, 3)) * scaling  # (B, H, Q, Dh) x (B, H, Dh, K) -> (B, H, Q, K)
    if position_bias is not None:
        scores = scores + position_bias  # + (1|B, H, Q, K)
    q_len, k_len = scores.shape[-2:]
    if attention_mask is None:
        if getattr(module, "is_causal", False) and q_len > 1:
            # sdpa stacks pass no mask and rely on is_causal (upper-left aligned, as in sdpa_attention_forward)
            causal = torch.ones(q_len, k_len, dtype=torch.bool, device=scores.device).tril()  # (Q, K)
            scores = scores.masked_fill(~causal, torch.finfo(scores.dtype).min)
    elif attention_mask.dtype == torch.bool:
        scores = scores.masked_fill(~attention_mask, torch.finfo(scores.dtype).min)  # mask (B, 1, Q|1, K)
    else:
        scores = scores + attention_mask  # additive (B, 1, Q|1, K), as eager_attention_forward
    probs = nn.functional.softmax(scores, dim=-1)  # (B, H, Q, K)
    recorder(probs, value)  # value (B, H, K, Dh), for the value circuits when the spec asks for them
    weights = nn.functional.dropout(probs, p=dropout, training=module.training)
    attn_output = torch.matmul(weights, value)  # (B, H, Q, K) x (B, H, K, Dh) -> (B, H, Q, Dh)
    attn_output = attn_output.transpose(1, 2).contiguous()  # -> (B, Q, H, Dh)
    return attn_output, weights


# Registered once under its own name; it is inert unless a module's config points at it (only inside a capture).
ALL_ATTENTION_FUNCTIONS[RECORD_IMPLEMENTATION] = record_attention_forward


def _blocks(stack: nn.Module) -> list[T5Block]:
    blocks = getattr(stack, "block", None)
    if blocks is None or not all(isinstance(b, T5Block) for b in blocks):
        raise CaptureError(f"{type(stack).__name__} has no T5Block list `.block`: it is not a T5 stack")
    return list(blocks)


class T5Backend:
    """Kinds ``encoder_self``, ``decoder_self`` and ``cross`` of a model with ``.encoder`` / ``.decoder`` T5 stacks."""

    @staticmethod
    def matches(model: nn.Module) -> bool:
        encoder = getattr(model, "encoder", None)
        blocks = getattr(encoder, "block", None)
        return isinstance(blocks, nn.ModuleList) and len(blocks) > 0 and isinstance(blocks[0], T5Block)

    def __init__(self, model: nn.Module) -> None:
        self.modules: dict[str, list[T5Attention]] = {}
        self.modules["encoder_self"] = [b.layer[0].SelfAttention for b in _blocks(model.encoder)]
        decoder = getattr(model, "decoder", None)
        if decoder is not None:
            blocks = _blocks(decoder)
            self.modules["decoder_self"] = [b.layer[0].SelfAttention for b in blocks]
            self.modules["cross"] = [b.layer[1].EncDecAttention for b in blocks]

    def layout(self) -> Layout:
        return {kind: (len(mods), mods[0].n_heads) for kind, mods in self.modules.items()}

    def attach(
        self,
        selected: dict[str, tuple[int, ...]],
        record: Callable[[str, int, torch.Tensor], None],
        record_values: Callable[[str, int, torch.Tensor], None] | None = None,
    ) -> Callable[[], None]:
        """Point the selected attention modules at the recording function; return the function that restores them.

        ``record_values`` (optional) receives each selected layer's (B, H, K, D) value circuits through ``module.o``.
        """
        originals: list[tuple[T5Attention, object]] = []

        def restore() -> None:
            for module, config in reversed(originals):
                module.config = config

        try:
            for kind, layers in selected.items():
                for layer in layers:
                    module = self.modules[kind][layer]
                    recording = copy.copy(module.config)
                    recording._attn_implementation_internal = RECORD_IMPLEMENTATION
                    outer = getattr(module.config, _RECORDER_ATTR, None)  # a nested capture also feeds the outer one
                    values = None if record_values is None else (record_values, module.o)
                    setattr(recording, _RECORDER_ATTR, _bind(record, kind, layer, outer, values))
                    originals.append((module, module.config))
                    module.config = recording
        except BaseException:
            restore()
            raise
        return restore


def _bind(
    record: Callable[[str, int, torch.Tensor], None],
    kind: str,
    layer: int,
    outer: Callable[[torch.Tensor, torch.Tensor], None] | None,
    values: tuple[Callable[[str, int, torch.Tensor], None], nn.Linear] | None,
) -> Callable[[torch.Tensor, torch.Tensor], None]:
    def recorder(probs: torch.Tensor, value: torch.Tensor) -> None:
        record(kind, layer, probs)
        if values is not None:
            record_values, out = values
            record_values(kind, layer, value_circuits(value, out.weight))  # (B, H, K, Dh) -> (B, H, K, D)
        if outer is not None:
            outer(probs, value)

    return recorder
