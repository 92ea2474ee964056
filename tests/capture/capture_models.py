"""Tiny T5 and BLIP models built from configs (no downloads) and model-state snapshots."""

from __future__ import annotations

import torch
from transformers import (
    BlipConfig,
    T5Config,
    T5ForConditionalGeneration,
)


def t5_config(dropout: float = 0.3) -> T5Config:
    """A fresh tiny config per model (``_from_config`` mutates ``_attn_implementation``)."""
    return T5Config(
        vocab_size=100,
        d_model=32,
        d_kv=8,
        d_ff=64,
        num_layers=2,
        num_decoder_layers=2,
        num_heads=4,
        decoder_start_token_id=0,
        pad_token_id=0,
        eos_token_id=1,
        dropout_rate=dropout,
    )


def build_t5(attn_implementation: str | None = "eager", seed: int = 0) -> T5ForConditionalGeneration:
    torch.manual_seed(seed)
    kwargs = {} if attn_implementation is None else {"attn_implementation": attn_implementation}
    return T5ForConditionalGeneration._from_config(t5_config(), **kwargs).eval()


def blip_config() -> BlipConfig:
    # VQA needs text hidden == encoder_hidden_size == vision hidden; heads set explicitly (default would be 8).
    text = dict(
        vocab_size=64,
        hidden_size=48,
        encoder_hidden_size=48,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=32,
        attention_probs_dropout_prob=0.3,
        hidden_dropout_prob=0.1,
        pad_token_id=0,
        bos_token_id=3,
        sep_token_id=4,
        eos_token_id=1,
    )
    vision = dict(
        hidden_size=48,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        image_size=32,
        patch_size=8,
        attention_dropout=0.3,
    )
    return BlipConfig(text_config=text, vision_config=vision)


def build_blip(cls: type, seed: int = 0):
    torch.manual_seed(seed)
    return cls._from_config(blip_config(), attn_implementation="eager").eval()


def snapshot(model: torch.nn.Module) -> dict:
    """Everything capture may touch: weights, per-module configs and hooks, attention implementation."""
    return {
        "state": {k: v.clone() for k, v in model.state_dict().items()},
        "configs": {name: id(m.config) for name, m in model.named_modules() if hasattr(m, "config")},
        "attn": model.config._attn_implementation,
        "hooks": {
            name: (len(m._forward_hooks), len(m._forward_pre_hooks), len(m._backward_hooks))
            for name, m in model.named_modules()
        },
        "training": {name: m.training for name, m in model.named_modules()},
    }


def assert_same_snapshot(before: dict, after: dict) -> None:
    assert after["configs"] == before["configs"]
    assert after["attn"] == before["attn"]
    assert after["hooks"] == before["hooks"]
    assert after["training"] == before["training"]
    assert before["state"].keys() == after["state"].keys()
    for k, v in before["state"].items():
        assert torch.equal(v, after["state"][k]), k


def assert_rows_sum_to_one(probs: torch.Tensor, atol: float = 1e-5) -> None:
    sums = probs.detach().sum(-1)  # (B, H, Q, K) -> (B, H, Q)
    torch.testing.assert_close(sums, torch.ones_like(sums), atol=atol, rtol=0)
