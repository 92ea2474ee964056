"""Padded inputs for the tiny capture test models."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture
def t5_inputs() -> dict[str, torch.Tensor]:
    """Batch of 3 with padding in both the encoder (lengths 6, 4, 2) and the decoder (lengths 5, 3, 5)."""
    g = torch.Generator().manual_seed(1)
    input_ids = torch.randint(2, 100, (3, 6), generator=g)
    attention_mask = torch.tensor([[1] * 6, [1] * 4 + [0] * 2, [1] * 2 + [0] * 4], dtype=torch.bool)
    input_ids = input_ids.masked_fill(~attention_mask, 0)
    labels = torch.randint(2, 100, (3, 5), generator=g)
    decoder_mask = torch.tensor([[1] * 5, [1] * 3 + [0] * 2, [1] * 5], dtype=torch.bool)
    labels = labels.masked_fill(~decoder_mask, -100)
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


@pytest.fixture
def blip_inputs() -> dict[str, torch.Tensor]:
    """Images (2, 3, 32, 32) -> 17 vision tokens; text of length 5 with padding in the second row."""
    g = torch.Generator().manual_seed(2)
    pixel_values = torch.randn(2, 3, 32, 32, generator=g)
    input_ids = torch.randint(5, 64, (2, 5), generator=g)
    input_ids[:, 0] = 3
    attention_mask = torch.tensor([[1] * 5, [1] * 3 + [0] * 2])
    input_ids = input_ids.masked_fill(attention_mask == 0, 0)
    return {"pixel_values": pixel_values, "input_ids": input_ids, "attention_mask": attention_mask}
