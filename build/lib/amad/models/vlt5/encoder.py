"""VL-T5's joint [text ; visual] encoder and the VL-T5 seq2seq model on stock transformers 5.24 T5 modules.

Port of j-min/VL-T5 ``JointEncoder`` / ``VLT5`` (written against transformers 4.2.1). Differences forced by 5.24:
the stack builds its own ``embed_tokens`` (tied to ``shared`` by the model), blocks return only
``(hidden, self_bias, cross_bias)``, and ``eager_attention_forward`` adds ``position_bias`` and the mask separately,
so we pass the text-only relative bias and the additive padding mask as two tensors (VL-T5 folded the mask into
the bias). Every block is called as a module, so each runs with its own attention implementation (``sdpa`` by
default, or the recording path that ``amad.capture`` switches single layers to).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from transformers.modeling_outputs import BaseModelOutput, Seq2SeqLMOutput
from transformers.models.t5.modeling_t5 import T5ForConditionalGeneration, T5PreTrainedModel, T5Stack

from amad.errors import ConfigError
from amad.models.vlt5.init import init_t5_weights
from amad.models.vlt5.visual import VisualEmbedding, VLT5Config


@dataclass
class VLT5EncoderOutput(BaseModelOutput):
    """Encoder states (B, L+N, D) plus the joint key mask (B, L+N) bool that the decoder cross-attends with."""

    attention_mask: torch.Tensor | None = None


def joint_mask(text_mask: torch.Tensor, vis_mask: torch.Tensor | None, total_length: int | None = None) -> torch.Tensor:
    """[text ; visual] key mask.

    Args:
        text_mask: (B, L) text mask (any dtype; nonzero = real token).
        vis_mask: (B, N) region mask, or None for all regions valid (or text-only when ``total_length == L``).
        total_length: L + N when known (then a missing vis_mask becomes all-true for the N regions).

    Returns:
        (B, L+N) bool, True = attend.
    """
    text_mask = text_mask.bool()
    if vis_mask is not None:
        return torch.cat([text_mask, vis_mask.to(text_mask.device).bool()], dim=1)  # (B, L) + (B, N) -> (B, L+N)
    extra = 0 if total_length is None else total_length - text_mask.shape[1]
    ones = text_mask.new_ones(text_mask.shape[0], extra)  # (B, N)
    return torch.cat([text_mask, ones], dim=1)


class VLT5JointEncoder(T5Stack):
    """T5 encoder stack over [text ; regions]; relative position bias on text-text pairs only."""

    def __init__(self, config: VLT5Config) -> None:
        super().__init__(config)
        self.visual_embedding = VisualEmbedding(config)
        self.post_init()
        init_t5_weights(self, config)  # transformers skips T5's scheme for custom classes (amad.models.vlt5.init)

    def text_position_bias(self, text_length: int, total_length: int, device: torch.device) -> torch.Tensor:
        """T5's bucketed relative bias on the text-text block, zeros elsewhere.

        Returns:
            (1, H, L+N, L+N): ``compute_bias(L, L)`` in the top-left (L, L) block.
        """
        attention = self.block[0].layer[0].SelfAttention
        bias = attention.compute_bias(text_length, text_length, device=device)  # (1, H, L, L)
        pad = total_length - text_length
        return nn.functional.pad(bias, (0, pad, 0, pad))  # (1, H, L, L) -> (1, H, L+N, L+N)

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        vis_feats: torch.Tensor | None = None,
        vis_boxes: torch.Tensor | None = None,
        vis_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> VLT5EncoderOutput:
        """Encode text (B, L) and optional regions (B, N, F) + boxes (B, N, 4) into (B, L+N, D).

        ``vis_feats=None`` is the text-only mode (Multi30K without images): the encoder runs on the text alone.
        """
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids or inputs_embeds")
        if inputs_embeds is None:
            inputs_embeds = self.embed_tokens(input_ids)  # (B, L) -> (B, L, D)
        batch, text_length = inputs_embeds.shape[:2]
        if attention_mask is None:
            attention_mask = (
                input_ids.ne(self.config.pad_token_id)
                if input_ids is not None
                else torch.ones(batch, text_length, dtype=torch.bool, device=inputs_embeds.device)
            )
        embeds = inputs_embeds
        if vis_feats is not None:
            if vis_boxes is None:
                raise ConfigError("vis_feats were given without vis_boxes: pass the (B, N, 4) boxes too")
            vis = self.visual_embedding(vis_feats, vis_boxes, self.embed_tokens)  # (B, N, D)
            embeds = torch.cat([inputs_embeds, vis.to(inputs_embeds.dtype)], dim=1)  # -> (B, L+N, D)
        mask = joint_mask(attention_mask, vis_mask, embeds.shape[1])  # (B, L+N) bool
        min_value = torch.finfo(embeds.dtype).min
        additive = (~mask)[:, None, None, :].to(embeds.dtype) * min_value  # (B, 1, 1, L+N)
        position_bias = self.text_position_bias(text_length, embeds.shape[1], embeds.device).to(embeds.dtype)

        hidden = self.dropout(embeds)
        for block in self.block:
            hidden, _, _ = block(hidden, attention_mask=additive, position_bias=position_bias)
        hidden = self.dropout(self.final_layer_norm(hidden))
        return VLT5EncoderOutput(last_hidden_state=hidden, attention_mask=mask)


class VLT5ForConditionalGeneration(T5ForConditionalGeneration):
    """VL-T5: joint encoder + stock T5 decoder (cross-attends to all L+N states) + tied, scaled ``lm_head``.

    ``forward`` / ``generate`` take ``vis_feats`` (B, N, F), ``vis_boxes`` (B, N, 4), ``vis_mask`` (B, N) besides
    the usual T5 arguments; with ``encoder_outputs`` given, ``attention_mask`` may be the joint (B, L+N) mask or the
    text mask (B, L), which is then extended with ``vis_mask`` (all-true if None).
    """

    config_class = VLT5Config
    config: VLT5Config

    def __init__(self, config: VLT5Config) -> None:
        T5PreTrainedModel.__init__(self, config)
        self.model_dim = config.d_model
        self.shared = nn.Embedding(config.vocab_size, config.d_model)
        encoder_config = copy.deepcopy(config)
        encoder_config.is_decoder = False
        encoder_config.use_cache = False
        self.encoder = VLT5JointEncoder(encoder_config)
        decoder_config = copy.deepcopy(config)
        decoder_config.is_decoder = True
        decoder_config.num_layers = config.num_decoder_layers
        self.decoder = T5Stack(decoder_config)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        self.post_init()
        init_t5_weights(self, config)  # every module, explicitly: see amad.models.vlt5.init

    def _encoder_outputs(
        self,
        input_ids: torch.Tensor | None,
        attention_mask: torch.Tensor | None,
        vis_feats: torch.Tensor | None,
        vis_boxes: torch.Tensor | None,
        vis_mask: torch.Tensor | None,
        encoder_outputs: Any,
        inputs_embeds: torch.Tensor | None = None,
    ) -> tuple[BaseModelOutput, torch.Tensor]:
        """Run the joint encoder unless ``encoder_outputs`` is given; return the states and the (B, L+N) key mask."""
        if encoder_outputs is None:
            out = self.encoder(
                input_ids=input_ids,
                attention_mask=attention_mask,
                vis_feats=vis_feats,
                vis_boxes=vis_boxes,
                vis_mask=vis_mask,
                inputs_embeds=inputs_embeds,
            )
            return out, out.attention_mask
        if not isinstance(encoder_outputs, BaseModelOutput):
            encoder_outputs = BaseModelOutput(last_hidden_state=encoder_outputs[0])
        states = encoder_outputs.last_hidden_state  # (B, L+N, D)
        if attention_mask is None:
            attention_mask = getattr(encoder_outputs, "attention_mask", None)
        if attention_mask is None:
            attention_mask = torch.ones(states.shape[:2], dtype=torch.bool, device=states.device)
        if attention_mask.shape[1] != states.shape[1]:
            attention_mask = joint_mask(attention_mask, vis_mask, states.shape[1])
        return encoder_outputs, attention_mask

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        vis_feats: torch.Tensor | None = None,
        vis_boxes: torch.Tensor | None = None,
        vis_mask: torch.Tensor | None = None,
        encoder_outputs: Any = None,
        inputs_embeds: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> Seq2SeqLMOutput:
        """T5ForConditionalGeneration.forward with visual inputs; returns a Seq2SeqLMOutput (logits (B, T, V))."""
        encoder_outputs, attention_mask = self._encoder_outputs(
            input_ids, attention_mask, vis_feats, vis_boxes, vis_mask, encoder_outputs, inputs_embeds
        )
        return super().forward(attention_mask=attention_mask, encoder_outputs=encoder_outputs, **kwargs)

    def generate(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        vis_feats: torch.Tensor | None = None,
        vis_boxes: torch.Tensor | None = None,
        vis_mask: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> torch.Tensor:
        """Encode once with the visual inputs, then let GenerationMixin decode (greedy or beam).

        Beam search expands the precomputed ``encoder_outputs`` and the joint mask per beam, so the regions follow
        their example.
        """
        with torch.no_grad():
            encoder_outputs, attention_mask = self._encoder_outputs(
                input_ids, attention_mask, vis_feats, vis_boxes, vis_mask, kwargs.pop("encoder_outputs", None)
            )
        return super().generate(attention_mask=attention_mask, encoder_outputs=encoder_outputs, **kwargs)
