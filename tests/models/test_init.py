"""Models built from scratch are initialised as their family's reference scheme says (issue 12, B1 and B2).

For every family and every named size: parameter-group stds match T5's per-module factors (VL-T5) or 0.02 (BLIP);
no attention kind is one-hot at init on random inputs; one task-loss backward reaches every attention projection,
every head's rows of q and k included (BLIP's vision tower fuses them into one qkv matrix).
"""

from __future__ import annotations

import math
import re
from collections import defaultdict

import numpy as np
import pytest
import torch

from amad.capture import CaptureSpec
from amad.models import MODEL_SIZES, build_model
from amad.models.vlt5.init import reference_std
from amad.testing import FakeFeatures, FakeImages
from amad.types import Example

SIZES = MODEL_SIZES.names()
BLIP_STD = 0.02


def _build(name: str, tokenizer, task: str = "caption"):
    family = name.split("-")[0]
    return build_model(family, task, name, tokenizer, seed=0)


def _tolerance(n: int) -> float:
    """10%, or four standard errors of a sample std for small groups (the std's relative s.e. is 1/sqrt(2n))."""
    return max(0.10, 4 / math.sqrt(2 * n))


def _group(name: str) -> str:
    return re.sub(r"\.\d+\.", ".*.", name)


def _check_groups(groups: dict[str, list[torch.Tensor]], expected: dict[str, float]) -> None:
    assert expected, "no parameter group was checked"
    for group, want in expected.items():
        values = torch.cat([p.detach().flatten().double() for p in groups[group]])
        got = values.std().item()
        assert abs(got / want - 1) < _tolerance(values.numel()), f"{group}: std {got:.4g}, expected {want:.4g}"


@pytest.mark.parametrize("name", [n for n in SIZES if n.startswith("vlt5")])
def test_vlt5_parameter_stds_follow_t5(name, tokenizer):
    model = _build(name, tokenizer).model
    ref = reference_std(model.config)
    groups: dict[str, list[torch.Tensor]] = defaultdict(list)
    expected = {}
    for pname, param in model.named_parameters():
        leaf = pname.split(".")[-2]  # q, k, v, o, wi, wo, relative_attention_bias, shared, ...
        if leaf in ref and param.dim() == 2:
            stack = pname.split(".")[0]  # encoder / decoder / shared: a bug may hit one stack only (B1)
            groups[f"{stack}.{leaf}"].append(param)
            expected[f"{stack}.{leaf}"] = ref[leaf]
        elif pname.endswith("feat_embedding.0.weight") or pname.endswith("absolute_vis_pos_embedding.0.weight"):
            groups[pname].append(param)
            expected[pname] = param.shape[1] ** -0.5
    assert {"encoder.q", "encoder.k", "decoder.q", "decoder.relative_attention_bias"} <= set(expected)
    _check_groups(groups, expected)


@pytest.mark.parametrize("task", ["vqa", "caption"])
@pytest.mark.parametrize("name", [n for n in SIZES if n.startswith("blip")])
def test_blip_parameter_stds_are_0_02(name, task, tokenizer):
    model = _build(name, tokenizer, task).model
    groups: dict[str, list[torch.Tensor]] = defaultdict(list)
    for pname, param in model.named_parameters():
        if param.dim() >= 2 and not pname.endswith("_ids"):
            groups[_group(pname)].append(param)
    assert any("vision_model" in g and "qkv" in g for g in groups)
    _check_groups(groups, dict.fromkeys(groups, BLIP_STD))


def _examples(task: str) -> list[Example]:
    """Four examples of different lengths (padding in every batch), with several target tokens each."""
    texts = ["what color is the circle on the left ?", "is the square blue ?", "how many shapes", "red circle"]
    targets = ["a red circle on the left", "two blue shapes", "no", "the square is blue and small"]
    if task == "vqa":
        return [Example(f"q{i}", str(i + 1), q, a, [a]) for i, (q, a) in enumerate(zip(texts, targets))]
    return [Example(f"c{i}", str(i + 1), "", c, [c]) for i, c in enumerate(targets)]


def _random_batch(model, task: str):
    if model.family == "vlt5":
        config = model.model.config
        visual = FakeFeatures(min(int(config.n_boxes), 8), int(config.feat_dim))
    else:
        visual = FakeImages(int(model.model.config.vision_config.image_size))
    return model.collate(_examples(task), visual, train=True)


@pytest.mark.parametrize("task", ["vqa", "caption"])
@pytest.mark.parametrize("name", SIZES)
def test_no_attention_kind_is_one_hot_at_init(name, task, tokenizer):
    model = _build(name, tokenizer, task).eval()
    layout = model.attention_layout()
    spec = CaptureSpec(layers={kind: list(range(layers)) for kind, (layers, _) in layout.items()})
    with torch.no_grad():
        maps = model(_random_batch(model, task), capture=spec).attentions
    for kind, (layers, _) in layout.items():
        for layer in range(layers):
            probs = maps.probs[(kind, layer)].double()  # (B, H, Q, K)
            query = maps.query_mask.get(kind)
            rows = probs if query is None else probs[query[:, None, :].expand(probs.shape[:3])]  # (..., K)
            rows = rows.reshape(-1, probs.shape[-1])
            entropy = -(rows * rows.clamp_min(1e-300).log()).sum(-1)  # (N,)
            keys = (rows > 0).sum(-1).double()  # valid keys per row (masked and causal keys get exactly 0)
            floor = 0.5 * keys.log().mean().item()
            assert entropy.mean().item() >= floor, f"{kind} layer {layer}: entropy {entropy.mean():.3f} < {floor:.3f}"


def _projections(model) -> dict[str, torch.Tensor]:
    """Every attention projection's weight gradient, fused qkv split into q, k and v: name -> (out, in) grad."""
    out = {}
    for name, module in model.named_modules():
        kind = type(module).__name__
        if kind == "T5Attention":
            out |= {f"{name}.{p}": getattr(module, p).weight.grad for p in ("q", "k", "v", "o")}
        elif kind == "BlipAttention":
            grad = module.qkv.weight.grad
            for part, chunk in zip("qkv", grad.chunk(3) if grad is not None else (None,) * 3):
                out[f"{name}.qkv[{part}]"] = chunk
            out[f"{name}.projection"] = module.projection.weight.grad
        elif kind == "BlipTextSelfAttention":
            out |= {f"{name}.{p}": getattr(module, p).weight.grad for p in ("query", "key", "value")}
    return out


@pytest.mark.parametrize("task", ["vqa", "caption"])
@pytest.mark.parametrize("name", SIZES)
def test_one_task_backward_reaches_every_attention_projection_and_head(name, task, tokenizer):
    model = _build(name, tokenizer, task)
    model(_random_batch(model, task)).loss.backward()
    projections = _projections(model.model)
    assert projections
    for pname, grad in projections.items():
        assert grad is not None and grad.abs().sum() > 0, f"{pname} gets no gradient"
        if pname.endswith((".q", ".k", "qkv[q]", "qkv[k]", ".query", ".key")):
            heads = _heads(model, pname)
            per_head = grad.reshape(heads, -1).abs().sum(1)  # (H,): each head's rows of the projection
            assert bool((per_head > 0).all()), f"{pname}: heads {np.flatnonzero(per_head == 0).tolist()} get none"


def _heads(model, pname: str) -> int:
    if model.family == "vlt5":
        return int(model.model.config.num_heads)
    config = model.model.config.vision_config if pname.startswith("vision_model") else model.model.config.text_config
    return int(config.num_attention_heads)
