"""Value circuits (CaptureSpec(values=True)): per head X_i = V_i W_O^i, so that the layer's output projection
returns exactly Σ_i A_i X_i (+ its bias) for every captured T5 and BLIP kind."""

from __future__ import annotations

import pytest
import torch
from capture_models import assert_same_snapshot, build_blip, build_t5, snapshot
from test_capture_blip import CASES
from test_capture_t5 import run
from transformers import BlipForQuestionAnswering
from transformers.models.blip.modeling_blip import BlipAttention

from amad.capture import CaptureSpec, attention_layout, capture_attention
from amad.capture.blip import BlipBackend
from amad.capture.circuits import value_circuits
from amad.capture.t5 import T5Backend
from amad.errors import ConfigError


def projection_outputs(projections: dict) -> tuple[dict, list]:
    """Record what each output projection returns: (kind, layer) -> (B, Q, D)."""
    seen: dict = {}
    handles = []
    for key, linear in projections.items():
        handles.append(linear.register_forward_hook(lambda _m, _a, out, key=key: seen.__setitem__(key, out.detach())))
    return seen, handles


def assert_outputs_rebuilt(maps, seen: dict, projections: dict) -> None:
    assert set(maps.values) == set(maps.probs) == set(seen)
    for key, out in seen.items():
        a, x = maps.probs[key].detach(), maps.values[key]  # (B, H, Q, K), (B, H, K, D)
        assert not x.requires_grad and x.shape[:3] == (a.shape[0], a.shape[1], a.shape[3])
        bias = projections[key].bias
        rebuilt = torch.einsum("bhqk,bhkd->bqd", a, x) + (0 if bias is None else bias.detach())  # (B, Q, D)
        torch.testing.assert_close(rebuilt, out, atol=1e-5, rtol=1e-4, msg=f"{key}")


def test_value_circuits_shape_and_head_slices() -> None:
    g = torch.Generator().manual_seed(0)
    values, weight = torch.randn(2, 3, 5, 4, generator=g), torch.randn(7, 12, generator=g)  # (B,H,K,Dh), (D,H·Dh)
    x = value_circuits(values, weight)
    assert x.shape == (2, 3, 5, 7)
    for h in range(3):
        torch.testing.assert_close(x[:, h], values[:, h] @ weight[:, 4 * h : 4 * h + 4].T)


def test_t5_circuits_rebuild_every_attention_output(t5_inputs) -> None:
    model = build_t5("sdpa")
    backend = T5Backend(model)
    projections = {(kind, i): m.o for kind, mods in backend.modules.items() for i, m in enumerate(mods)}
    before = snapshot(model)
    seen, handles = projection_outputs(projections)
    spec = CaptureSpec(layers={kind: None for kind in attention_layout(model)}, values=True)
    with torch.no_grad(), capture_attention(model, spec) as maps:
        run(model, t5_inputs)
    for handle in handles:
        handle.remove()
    assert_same_snapshot(before, snapshot(model))
    assert_outputs_rebuilt(maps, seen, projections)


@pytest.mark.parametrize(("cls", "kinds", "forward"), CASES)
def test_blip_circuits_rebuild_every_attention_output(blip_inputs, cls, kinds, forward) -> None:
    model = build_blip(cls)
    backend = BlipBackend(model)
    projections = {(kind, i): out for kind, mods in backend.modules.items() for i, (_, out) in enumerate(mods)}
    before = snapshot(model)
    seen, handles = projection_outputs(projections)
    with torch.no_grad(), capture_attention(model, CaptureSpec(layers=dict.fromkeys(kinds), values=True)) as maps:
        forward(model, blip_inputs)
    for handle in handles:
        handle.remove()
    assert_same_snapshot(before, snapshot(model))
    assert_outputs_rebuilt(maps, seen, projections)
    vision = backend.modules["vision_self"][0][0]
    assert isinstance(vision, BlipAttention) and maps.values[("vision_self", 0)].shape[-1] == vision.embed_dim


def test_values_only_on_request_and_spec_checks_the_flag(blip_inputs) -> None:
    model = build_blip(BlipForQuestionAnswering)
    with torch.no_grad(), capture_attention(model, CaptureSpec(layers={"vision_self": None})) as maps:
        model.vision_model(pixel_values=blip_inputs["pixel_values"])
    assert len(maps) == 2 and not maps.values
    with pytest.raises(ConfigError, match="values must be true or false"):
        CaptureSpec(layers={"vision_self": None}, values="yes")
