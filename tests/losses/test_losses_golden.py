"""Golden values: the vectorised losses against loop-by-loop references and stored literal numbers."""

from __future__ import annotations

import math

import pytest
import torch
from loss_reference import (
    alignment_one,
    amad_kl_one,
    amad_l2_one,
    amad_token_kl_one,
    head_mean_kl_one,
    logit_kd_ref,
    one_to_one_kl_one,
    one_to_one_mse_one,
)

import amad.losses as L

B, HT, HS, Q, K = 2, 4, 2, 3, 4
QUERY_MASK = torch.tensor([[True, True, True], [True, True, False]])
KEY_MASK = torch.tensor([[True, True, True, True], [True, False, True, False]])


def fixed_maps(h: int, phase: float, key_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Deterministic (B, h, Q, K) float64 probabilities (no RNG); masked keys get probability 0."""
    i = torch.arange(B * h * Q * K, dtype=torch.float64).reshape(B, h, Q, K)
    scores = 2.5 * torch.sin(0.7 * i + phase) + torch.cos(1.9 * i * phase)
    if key_mask is not None:
        scores = scores.masked_fill(~key_mask[:, None, None, :], float("-inf"))
    return torch.softmax(scores, dim=-1)


T = fixed_maps(HT, 0.3, KEY_MASK)
S = fixed_maps(HS, 1.1, KEY_MASK)


def per_sample_mean(ref, t: torch.Tensor, s: torch.Tensor, *args) -> float:
    """Mean over samples of ``ref`` applied to each sample's maps with the padding cut away."""
    vals = []
    for b in range(t.shape[0]):
        qi, ki = QUERY_MASK[b].nonzero().flatten(), KEY_MASK[b].nonzero().flatten()
        tb = t[b][:, qi][:, :, ki]
        sb = s[b][:, qi][:, :, ki]
        vals.append(ref(tb, sb, *args))
    return sum(vals) / len(vals)


# The loop references are the paper's sums over heads, so the losses are called with reduction="sum" here.
SUM = {"reduction": "sum"}
CASES = {
    "amad_kl": (
        lambda s, t, **m: L.amad_kl(s, t, tau=0.5, **SUM, **m),
        lambda t, s: per_sample_mean(amad_kl_one, t, s, 0.5),
    ),
    "amad_l2": (
        lambda s, t, **m: L.amad_l2(s, t, tau=0.5, **SUM, **m),
        lambda t, s: per_sample_mean(amad_l2_one, t, s, 0.5),
    ),
    "amad_token_kl": (
        lambda s, t, **m: L.amad_token_kl(s, t, tau=0.5, **SUM, **m),
        lambda t, s: per_sample_mean(amad_token_kl_one, t, s, 0.5),
    ),
    "one_to_one_kl": (
        lambda s, t, **m: L.one_to_one_kl(s, t, teacher_heads=[3, 1], **SUM, **m),
        lambda t, s: per_sample_mean(one_to_one_kl_one, t, s, [3, 1]),
    ),
    "one_to_one_mse": (
        lambda s, t, **m: L.one_to_one_mse(s, t, teacher_heads=[3, 1], **SUM, **m),
        lambda t, s: per_sample_mean(one_to_one_mse_one, t, s, [3, 1]),
    ),
    "head_mean_kl": (
        lambda s, t, **m: L.head_mean_kl(s, t, **SUM, **m),
        lambda t, s: per_sample_mean(head_mean_kl_one, t, s),
    ),
}
# Which heads each loss sums over: reduction="per_head" divides by this count (HT teacher or HS student heads).
SUMMED_HEADS = {"amad_kl": HT, "amad_l2": HT, "amad_token_kl": HT, "one_to_one_kl": HS, "one_to_one_mse": HS}
SUMMED_HEADS["head_mean_kl"] = HS

# Stored values (float64, masked case above); a change here means the maths changed: bump the loss's version.
LITERALS = {
    "amad_kl": 2.0663766145,
    "amad_l2": 2.0907289211,
    "amad_token_kl": 2.0131598634,
    "one_to_one_kl": 1.6360453694,
    "one_to_one_mse": 0.5191744755,
    "head_mean_kl": 1.3808346648,
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_loop_reference(name: str) -> None:
    loss, ref = CASES[name]
    got = loss(S, T, query_mask=QUERY_MASK, key_mask=KEY_MASK)
    assert got.dtype == torch.float64 and got.dim() == 0
    assert got.item() == pytest.approx(ref(T, S), rel=1e-10)


@pytest.mark.parametrize("name", sorted(LITERALS))
def test_literal_golden_values(name: str) -> None:
    loss, _ = CASES[name]
    got = loss(S, T, query_mask=QUERY_MASK, key_mask=KEY_MASK)
    assert got.item() == pytest.approx(LITERALS[name], rel=1e-8)


PER_HEAD_OPTIONS = {
    "amad_kl": {"tau": 0.5},
    "amad_l2": {"tau": 0.5},
    "amad_token_kl": {"tau": 0.5},
    "one_to_one_kl": {"teacher_heads": [3, 1]},
    "one_to_one_mse": {"teacher_heads": [3, 1]},
    "head_mean_kl": {},
}


@pytest.mark.parametrize("name", sorted(LITERALS))
def test_per_head_is_the_default_and_divides_the_sum_by_the_summed_heads(name: str) -> None:
    loss = L.get(name)
    masks = {"query_mask": QUERY_MASK, "key_mask": KEY_MASK}
    default = loss(S, T, **PER_HEAD_OPTIONS[name], **masks)
    per_head = loss(S, T, **PER_HEAD_OPTIONS[name], reduction="per_head", **masks)
    assert default.item() == per_head.item()
    assert per_head.item() == pytest.approx(LITERALS[name] / SUMMED_HEADS[name], rel=1e-8)


def test_alignment_matches_reference_and_rows_sum_to_one() -> None:
    a = L.alignment(S, T, tau=0.5, query_mask=QUERY_MASK, key_mask=KEY_MASK)
    assert a.shape == (B, HT, HS)
    for b in range(B):
        qi, ki = QUERY_MASK[b].nonzero().flatten(), KEY_MASK[b].nonzero().flatten()
        ref = alignment_one(T[b][:, qi][:, :, ki], S[b][:, qi][:, :, ki], 0.5)
        torch.testing.assert_close(a[b], torch.tensor(ref, dtype=torch.float64), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(a.sum(-1), torch.ones(B, HT, dtype=torch.float64))


def test_hand_computed_values() -> None:
    # One row, two keys: KL([.5, .5] || [.25, .75]) = 0.5 ln 2 + 0.5 ln(2/3) = 0.5 ln(4/3).
    t = torch.tensor([0.5, 0.5]).view(1, 1, 1, 2)
    s = torch.tensor([0.25, 0.75]).view(1, 1, 1, 2)
    assert L.one_to_one_kl(s, t).item() == pytest.approx(0.5 * math.log(4 / 3), rel=1e-6)
    assert L.one_to_one_mse(s, t).item() == pytest.approx(0.0625, rel=1e-6)
    # Teacher [1, 0]; student heads [1, 0] and [0, 1]: cosines 1 and 0, so a = (e, 1) / (e + 1).
    t = torch.tensor([1.0, 0.0]).view(1, 1, 1, 2)
    s = torch.tensor([[1.0, 0.0], [0.0, 1.0]]).view(1, 2, 1, 2)
    e = math.e
    torch.testing.assert_close(L.alignment(s, t), torch.tensor([[[e / (e + 1), 1 / (e + 1)]]]))
    # The mixture puts e/(e+1) on the teacher's key, so KL = -ln(e/(e+1)) = ln(1 + 1/e).
    assert L.amad_kl(s, t).item() == pytest.approx(math.log(1 + 1 / e), rel=1e-6)
    # ||[1, 0] - a1 [1, 0] - a2 [0, 1]||² = 2 / (e + 1)².
    assert L.amad_l2(s, t).item() == pytest.approx(2 / (e + 1) ** 2, rel=1e-6)


def test_logit_kd_matches_reference() -> None:
    i = torch.arange(2 * 3 * 5, dtype=torch.float64).reshape(2, 3, 5)
    zs, zt = 2 * torch.sin(i), 3 * torch.cos(0.5 * i)
    mask = torch.tensor([[True, True, False], [True, False, False]])
    got = L.logit_kd(zs, zt, mask=mask, temperature=2.0)
    assert got.item() == pytest.approx(logit_kd_ref(zs, zt, mask, 2.0), rel=1e-10)
    assert got.item() == pytest.approx(0.7348335062, rel=1e-8)
    full = L.logit_kd(zs, zt, temperature=1.0)
    assert full.item() == pytest.approx(logit_kd_ref(zs, zt, torch.ones(2, 3, dtype=torch.bool), 1.0), rel=1e-10)
