"""CaptureSpec validation, row-sum checks and unsupported models."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from amad.capture import CaptureSpec, capture_attention, check_row_sums
from amad.errors import CaptureError, ConfigError, UnknownNameError

LAYOUT = {"encoder_self": (6, 8), "decoder_self": (4, 8), "cross": (4, 8)}


def test_resolve_sorts_dedupes_and_counts_negative_indices_from_the_end() -> None:
    spec = CaptureSpec(layers={"encoder_self": [5, -1, 0, 2], "cross": None})
    assert spec.resolve(LAYOUT) == {"encoder_self": (0, 2, 5), "cross": (0, 1, 2, 3)}
    assert CaptureSpec.all_layers(LAYOUT).resolve(LAYOUT)["decoder_self"] == (0, 1, 2, 3)


def test_spec_is_frozen_data() -> None:
    spec = CaptureSpec(layers={"cross": [1, 0]})
    assert spec.layers == {"cross": (1, 0)}
    assert spec == CaptureSpec(layers={"cross": (1, 0)})
    with pytest.raises(AttributeError):
        spec.layers = {}


def test_unknown_kind_lists_the_model_kinds() -> None:
    with pytest.raises(UnknownNameError) as info:
        CaptureSpec(layers={"encoder_sel": [0]}).resolve(LAYOUT)
    assert str(info.value) == (
        "unknown attention kind 'encoder_sel' for this model (did you mean 'encoder_self', 'decoder_self'?): "
        "it has cross, decoder_self, encoder_self"
    )


@pytest.mark.parametrize("layer", [4, -5])
def test_layer_out_of_range(layer: int) -> None:
    with pytest.raises(ConfigError, match=f"layer {layer} is out of range for attention kind 'cross': the model has 4"):
        CaptureSpec(layers={"cross": [0, layer]}).resolve(LAYOUT)


@pytest.mark.parametrize(
    ("layers", "message"),
    [
        ({}, "non-empty mapping"),
        ([("cross", [0])], "non-empty mapping"),
        ({"cross": []}, "non-empty list of ints"),
        ({"cross": [0.5]}, "non-empty list of ints"),
        ({"cross": [True]}, "non-empty list of ints"),
        ({"cross": "0"}, "must be a list of ints or None"),
        ({"cross": 1}, "must be a list of ints or None"),
        ({1: [0]}, "kinds must be strings"),
    ],
)
def test_bad_specs(layers, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        CaptureSpec(layers=layers)
    assert "\n" not in str(info.value)


def test_unsupported_model() -> None:
    with pytest.raises(CaptureError, match="cannot capture attention of a Linear"):
        capture_attention(nn.Linear(2, 2), CaptureSpec(layers={"cross": None})).__enter__()


def test_row_sums_accept_softmax_zero_rows_and_masked_keys() -> None:
    probs = torch.randn(2, 3, 4, 5).softmax(-1)  # (B, H, Q, K)
    probs[0, :, :, 3:] = 0  # masked keys ...
    probs[0] = probs[0] / probs[0].sum(-1, keepdim=True)  # ... renormalised over the valid keys
    probs[1, :, 2] = 0  # a fully masked query row that came out zero
    check_row_sums({("cross", 0): probs, ("cross", 1): probs.half(), ("cross", 2): probs.bfloat16()})


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (0.5, "captured cross layer 3 attention rows do not sum to 1"),
        (float("nan"), "captured cross layer 3 attention holds NaN or inf: a non-finite input"),
        (float("inf"), "captured cross layer 3 attention holds NaN or inf: a non-finite input"),
    ],
)
def test_row_sums_reject_unnormalised_rows(value: float, message: str) -> None:
    good = torch.randn(1, 2, 3, 4).softmax(-1)
    bad = good.clone()
    bad[0, 1, 2, 0] += value
    with pytest.raises(CaptureError, match=message):
        check_row_sums({("encoder_self", 0): good, ("cross", 3): bad})
