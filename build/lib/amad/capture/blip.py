"""BLIP capture backend (transformers 5.24): forward pre-hooks on the attention modules' dropout.

BLIP is eager-only. Both attention classes compute ``softmax`` and pass the probabilities through their own
``nn.Dropout`` submodule exactly once per call: ``BlipAttention`` (vision) then *returns* the dropped tensor and
``BlipTextSelfAttention`` the undropped one. A forward pre-hook on that dropout module sees the pre-dropout
probabilities for both, with the autograd graph intact, so no BLIP layer changes its computation.

Kinds: ``vision_self`` (vision_model); ``text_self`` / ``text_cross`` for the text tower that reads the image (the
caption ``text_decoder``, or the VQA question ``text_encoder``); ``answer_self`` / ``answer_cross`` for the VQA
answer ``text_decoder`` (its cross-attention reads the question-encoder states).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from transformers.models.blip.modeling_blip import BlipAttention, BlipVisionModel
from transformers.models.blip.modeling_blip_text import BlipTextModel, BlipTextSelfAttention

from amad.capture.spec import Layout
from amad.errors import CaptureError


def _text_kinds(text_model: BlipTextModel, prefix: str) -> dict[str, list[BlipTextSelfAttention]]:
    layers = list(text_model.encoder.layer)
    kinds = {f"{prefix}_self": [layer.attention.self for layer in layers]}
    if all(hasattr(layer, "crossattention") for layer in layers):
        kinds[f"{prefix}_cross"] = [layer.crossattention.self for layer in layers]
    return kinds


class BlipBackend:
    """Capture for ``BlipForConditionalGeneration`` and ``BlipForQuestionAnswering`` (any model with BLIP towers)."""

    @staticmethod
    def matches(model: nn.Module) -> bool:
        return isinstance(getattr(model, "vision_model", None), BlipVisionModel)

    def __init__(self, model: nn.Module) -> None:
        self.modules: dict[str, list[nn.Module]] = {
            "vision_self": [layer.self_attn for layer in model.vision_model.encoder.layers]
        }
        encoder = getattr(model, "text_encoder", None)
        decoder = getattr(model, "text_decoder", None)
        if encoder is not None:
            self.modules.update(_text_kinds(encoder, "text"))
            if decoder is not None:
                self.modules.update(_text_kinds(decoder.bert, "answer"))
        elif decoder is not None:
            self.modules.update(_text_kinds(decoder.bert, "text"))
        for kind, mods in self.modules.items():
            for layer, module in enumerate(mods):
                if not isinstance(module, (BlipAttention, BlipTextSelfAttention)) or not isinstance(
                    getattr(module, "dropout", None), nn.Dropout
                ):
                    raise CaptureError(
                        f"BLIP {kind} layer {layer} is a {type(module).__name__} without an nn.Dropout on its "
                        "probabilities: capture supports transformers 5.24 BLIP attention only"
                    )

    def layout(self) -> Layout:
        def heads(module: nn.Module) -> int:
            return module.num_heads if isinstance(module, BlipAttention) else module.num_attention_heads

        return {kind: (len(mods), heads(mods[0])) for kind, mods in self.modules.items()}

    def attach(
        self, selected: dict[str, tuple[int, ...]], record: Callable[[str, int, torch.Tensor], None]
    ) -> Callable[[], None]:
        """Hook the dropout of each selected attention module; return the function that removes the hooks."""
        handles: list[torch.utils.hooks.RemovableHandle] = []

        def restore() -> None:
            for handle in handles:
                handle.remove()

        try:
            for kind, layers in selected.items():
                for layer in layers:
                    dropout = self.modules[kind][layer].dropout
                    handles.append(dropout.register_forward_pre_hook(_pre_dropout_hook(record, kind, layer)))
        except BaseException:
            restore()
            raise
        return restore


def _pre_dropout_hook(
    record: Callable[[str, int, torch.Tensor], None], kind: str, layer: int
) -> Callable[[nn.Module, tuple[torch.Tensor, ...]], None]:
    def hook(_module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        record(kind, layer, args[0])  # (B, H, Q, K) softmax output, before dropout

    return hook
