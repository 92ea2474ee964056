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

from amad.capture.circuits import value_circuits
from amad.capture.spec import Layout
from amad.errors import CaptureError


def _text_kinds(text_model: BlipTextModel, prefix: str) -> dict[str, list[tuple[nn.Module, nn.Linear]]]:
    """kind -> per layer (the attention module holding the probabilities, its output projection)."""
    layers = list(text_model.encoder.layer)
    kinds = {f"{prefix}_self": [(layer.attention.self, layer.attention.output.dense) for layer in layers]}
    if all(hasattr(layer, "crossattention") for layer in layers):
        kinds[f"{prefix}_cross"] = [(layer.crossattention.self, layer.crossattention.output.dense) for layer in layers]
    return kinds


def _head_values(module: nn.Module, projected: torch.Tensor) -> torch.Tensor:
    """The output of the module's value projection -> per-head values (B, H, K, Dh).

    Vision ``BlipAttention``: ``qkv`` output (B, K, 3·E), laid out (3, H, Dh) as its forward reshapes it. Text
    ``BlipTextSelfAttention``: ``value`` output (B, K, H·Dh).
    """
    b, k, _ = projected.shape
    if isinstance(module, BlipAttention):
        return projected.reshape(b, k, 3, module.num_heads, -1)[:, :, 2].transpose(1, 2)  # -> (B, H, K, Dh)
    return projected.view(b, k, module.num_attention_heads, -1).transpose(1, 2)  # (B, K, H·Dh) -> (B, H, K, Dh)


class BlipBackend:
    """Capture for ``BlipForConditionalGeneration`` and ``BlipForQuestionAnswering`` (any model with BLIP towers)."""

    @staticmethod
    def matches(model: nn.Module) -> bool:
        return isinstance(getattr(model, "vision_model", None), BlipVisionModel)

    def __init__(self, model: nn.Module) -> None:
        self.modules: dict[str, list[tuple[nn.Module, nn.Linear]]] = {
            "vision_self": [
                (layer.self_attn, layer.self_attn.projection) for layer in model.vision_model.encoder.layers
            ]
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
            for layer, (module, _) in enumerate(mods):
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

        return {kind: (len(mods), heads(mods[0][0])) for kind, mods in self.modules.items()}

    def attach(
        self,
        selected: dict[str, tuple[int, ...]],
        record: Callable[[str, int, torch.Tensor], None],
        record_values: Callable[[str, int, torch.Tensor], None] | None = None,
    ) -> Callable[[], None]:
        """Hook the dropout of each selected attention module; return the function that removes the hooks.

        With ``record_values``, also hook its value projection (``qkv`` or ``value``) and pass on the layer's
        (B, H, K, D) value circuits through its output projection.
        """
        handles: list[torch.utils.hooks.RemovableHandle] = []

        def restore() -> None:
            for handle in handles:
                handle.remove()

        try:
            for kind, layers in selected.items():
                for layer in layers:
                    module, out = self.modules[kind][layer]
                    handles.append(module.dropout.register_forward_pre_hook(_pre_dropout_hook(record, kind, layer)))
                    if record_values is not None:
                        projection = module.qkv if isinstance(module, BlipAttention) else module.value
                        hook = _value_hook(record_values, kind, layer, module, out)
                        handles.append(projection.register_forward_hook(hook))
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


def _value_hook(
    record_values: Callable[[str, int, torch.Tensor], None], kind: str, layer: int, module: nn.Module, out: nn.Linear
) -> Callable[[nn.Module, tuple[torch.Tensor, ...], torch.Tensor], None]:
    def hook(_projection: nn.Module, _args: tuple[torch.Tensor, ...], projected: torch.Tensor) -> None:
        record_values(kind, layer, value_circuits(_head_values(module, projected), out.weight))  # (B, H, K, D)

    return hook
