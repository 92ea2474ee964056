"""Squeezing-Heads Distillation: a loop reference from the equations, golden values, invariances and errors."""

from __future__ import annotations

import math

import pytest
import torch

import amad.losses as L
from amad.errors import ConfigError
from amad.losses.squeezing_heads import merge_weight, squeeze_heads

B, Q, K, D = 2, 3, 4, 2
QUERY_MASK = torch.tensor([[True, True, True], [True, True, False]])
KEY_MASK = torch.tensor([[True, True, True, True], [True, False, True, False]])


def fixed(shape: tuple[int, ...], phase: float, probs: bool = True) -> torch.Tensor:
    """Deterministic float64 tensor (no RNG); probabilities over the last dim (masked keys 0) when ``probs``."""
    i = torch.arange(math.prod(shape), dtype=torch.float64).reshape(shape)
    x = 2.0 * torch.sin(0.7 * i + phase) + torch.cos(1.3 * i * phase)
    if not probs:
        return x
    return torch.softmax(x.masked_fill(~KEY_MASK[:, None, None, :], float("-inf")), dim=-1)


# ---- reference: one sample, padding cut away, plain Python floats, straight from the equations ----
def ref_alpha(ap, aq, xp, xq, clamp=True):
    """α* = <Δ X_p, Δ S> / ||Δ S||², Δ = A_p − A_q, S = X_p + X_q (1/2 without circuits or when ||Δ S|| = 0)."""
    if xp is None:
        return 0.5
    num = den = 0.0
    for r in range(len(ap)):
        for d in range(len(xp[0])):
            dx = sum((ap[r][k] - aq[r][k]) * xp[k][d] for k in range(len(xp)))
            ds = sum((ap[r][k] - aq[r][k]) * (xp[k][d] + xq[k][d]) for k in range(len(xp)))
            num, den = num + dx * ds, den + ds * ds
    alpha = num / den if den > 0 else 0.5
    return min(1.0, max(0.0, alpha)) if clamp else alpha


def ref_squeeze(a, x, hs, partial="leading"):
    """Algorithm 1 on lists of (Q, K) maps and (K, D) circuits (x None: no circuits)."""
    while len(a) > hs:
        h = len(a)
        pairs = min(h // 2, h - hs)
        start = 0 if pairs == h // 2 or partial == "leading" else h - 2 * pairs
        new_a, new_x = a[:start], None if x is None else x[:start]
        for j in range(start, start + 2 * pairs, 2):
            al = ref_alpha(a[j], a[j + 1], None if x is None else x[j], None if x is None else x[j + 1])
            new_a.append([[al * u + (1 - al) * v for u, v in zip(ru, rv)] for ru, rv in zip(a[j], a[j + 1])])
            if x is not None:
                new_x.append([[u + v for u, v in zip(ru, rv)] for ru, rv in zip(x[j], x[j + 1])])
        a = new_a + a[start + 2 * pairs :]
        x = None if x is None else new_x + x[start + 2 * pairs :]
    return a


def ref_soft(row, temp):
    powered = [p ** (1 / temp) for p in row]
    return [p / sum(powered) for p in powered]


def ref_one(t, s, x, temp=1.0, t2=True, partial="leading"):
    """Σ_i mean_r KL(soft(t̃_i[r]) || soft(s_i[r])), times T² when t2."""
    tt = ref_squeeze(t.tolist(), None if x is None else x.tolist(), s.shape[0], partial)
    total = 0.0
    for i, s_map in enumerate(s.tolist()):
        rows = [(ref_soft(tr, temp), ref_soft(sr, temp)) for tr, sr in zip(tt[i], s_map)]
        total += sum(sum(p * math.log(p / q) for p, q in zip(tr, sr) if p > 0) for tr, sr in rows) / len(rows)
    return total * (temp**2 if t2 else 1.0)


def ref_loss(s, t, x=None, **opts):
    vals = []
    for b in range(s.shape[0]):
        qi, ki = QUERY_MASK[b].nonzero().flatten(), KEY_MASK[b].nonzero().flatten()
        xb = None if x is None else x[b][:, ki]
        vals.append(ref_one(t[b][:, qi][:, :, ki], s[b][:, qi][:, :, ki], xb, **opts))
    return sum(vals) / len(vals)


# (Ht, Hs, with circuits, options): odd counts, a partial round each way, softening.
CASES = {
    "5to2_values_T2": (5, 2, True, {"temperature": 2.0}),
    "6to4_trailing_T08": (6, 4, False, {"temperature": 0.8, "partial_round": "trailing"}),
    "7to3_values_noT2": (7, 3, True, {"temperature": 3.0, "t2_scale": False}),
    "8to8": (8, 8, True, {}),
}
# float64, reduction="sum"; a change here means the maths changed: bump the loss's version.
LITERALS = {
    "5to2_values_T2": 1.0904001436,
    "6to4_trailing_T08": 2.5596690668,
    "7to3_values_noT2": 0.3548814784,
    "8to8": 3.4481078590,
}


def case(name):
    ht, hs, with_x, opts = CASES[name]
    s, t = fixed((B, hs, Q, K), 1.1), fixed((B, ht, Q, K), 0.3)
    x = fixed((B, ht, K, D), 0.9, probs=False) if with_x else None
    return s, t, x, opts


def loss(s, t, x, masked=True, **opts):
    m = {"query_mask": QUERY_MASK, "key_mask": KEY_MASK} if masked else {}
    return L.squeezing_heads_kl(s, t, teacher_values=x, **m, **opts)


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_loop_reference_and_golden_literal(name: str) -> None:
    s, t, x, opts = case(name)
    got = loss(s, t, x, reduction="sum", **opts)
    ref_opts = {"temp": opts.get("temperature", 1.0), "t2": opts.get("t2_scale", True)}
    ref_opts["partial"] = opts.get("partial_round", "leading")
    assert got.dtype == torch.float64 and got.dim() == 0
    assert got.item() == pytest.approx(ref_loss(s, t, x, **ref_opts), rel=1e-10, abs=1e-12)
    assert got.item() == pytest.approx(LITERALS[name], rel=1e-8)


def objective(ap, aq, xp, xq, alpha):
    """J(α) = ||A_p X_p + A_q X_q − (α A_p + (1 − α) A_q)(X_p + X_q)||²_F, formed literally."""
    return (ap @ xp + aq @ xq - (alpha * ap + (1 - alpha) * aq) @ (xp + xq)).square().sum().item()


@pytest.mark.parametrize("seed", range(4))
def test_closed_form_alpha_is_the_brute_force_minimiser(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    ap, aq = (torch.softmax(3 * torch.randn(5, 6, generator=g, dtype=torch.float64), -1) for _ in range(2))
    xp, xq = (torch.randn(6, 3, generator=g, dtype=torch.float64) * (1 + 2 * seed) for _ in range(2))
    grid = torch.linspace(-4, 5, 9001, dtype=torch.float64)
    best = grid[torch.tensor([objective(ap, aq, xp, xq, a) for a in grid]).argmin()].item()
    lo, hi = best - 1e-3, best + 1e-3
    for _ in range(80):  # golden-section refinement of the convex quadratic
        m1, m2 = lo + 0.382 * (hi - lo), hi - 0.382 * (hi - lo)
        lo, hi = (lo, m2) if objective(ap, aq, xp, xq, m1) < objective(ap, aq, xp, xq, m2) else (m1, hi)
    assert merge_weight(ap, aq, xp, xq, clamp=False).item() == pytest.approx((lo + hi) / 2, abs=1e-7)
    clamped = min(1.0, max(0.0, (lo + hi) / 2))
    assert merge_weight(ap, aq, xp, xq, clamp=True).item() == pytest.approx(clamped, abs=1e-7)
    assert merge_weight(ap, aq, None, None, clamp=True).item() == 0.5


@pytest.mark.parametrize("temperature", [1.0, 2.0])
@pytest.mark.parametrize("with_x", [False, True])
def test_zero_when_student_is_the_squeezed_teacher(temperature: float, with_x: bool) -> None:
    t, x = fixed((B, 5, Q, K), 0.3), fixed((B, 5, K, D), 0.9, probs=False) if with_x else None
    s = squeeze_heads(t, 3, teacher_values=x)
    assert torch.allclose(s.sum(-1)[0], torch.ones(3, Q, dtype=torch.float64))
    assert loss(s, t, x, masked=False, temperature=temperature).abs().item() < 1e-10  # log takes s + 1e-12


@pytest.mark.parametrize(
    ("ht", "hs", "partial", "rows"),
    [  # rows[j]: 4 x the weight of each teacher head in squeezed head j (α = 1/2); 9 -> 5 -> 3 is the rebuttal's
        (9, 3, "leading", [[1, 1, 1, 1, 0, 0, 0, 0, 0], [0, 0, 0, 0, 1, 1, 1, 1, 0], [0] * 8 + [4]]),
        (6, 4, "leading", [[2, 2, 0, 0, 0, 0], [0, 0, 2, 2, 0, 0], [0, 0, 0, 0, 4, 0], [0, 0, 0, 0, 0, 4]]),
        (6, 4, "trailing", [[4, 0, 0, 0, 0, 0], [0, 4, 0, 0, 0, 0], [0, 0, 2, 2, 0, 0], [0, 0, 0, 0, 2, 2]]),
    ],
)
def test_merge_schedule(ht: int, hs: int, partial: str, rows: list[list[int]]) -> None:
    one_hot = torch.eye(ht, dtype=torch.float64)[None, :, None, :]  # teacher head i attends to key i: (1, Ht, 1, Ht)
    got = squeeze_heads(one_hot, hs, partial_round=partial)[0, :, 0]  # (1, Hs, 1, Ht) -> (Hs, Ht)
    torch.testing.assert_close(got, torch.tensor(rows, dtype=torch.float64) / 4)


@pytest.mark.parametrize("seed", range(3))
def test_non_negative(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    s, t = (torch.softmax(4 * torch.randn(B, h, Q, K, generator=g), -1) for h in (3, 7))
    x = torch.randn(B, 7, K, D, generator=g)
    assert loss(s, t, x, temperature=1.5).item() >= 0


def test_equal_head_counts_is_one_to_one_kl() -> None:
    s, t, x, _ = case("8to8")
    masks = {"query_mask": QUERY_MASK, "key_mask": KEY_MASK}
    for red in ("sum", "per_head"):
        expected = L.one_to_one_kl(s, t, reduction=red, **masks)
        torch.testing.assert_close(loss(s, t, x, reduction=red), expected, rtol=1e-12, atol=0)


def pad(x: torch.Tensor, dims: dict[int, int], seed: int) -> torch.Tensor:
    """Append garbage (noise and one NaN) along the given dims."""
    g = torch.Generator().manual_seed(seed)
    shape = [n + dims.get(i, 0) for i, n in enumerate(x.shape)]
    out = torch.rand(*shape, generator=g, dtype=x.dtype) * 5
    out[tuple(slice(0, n) for n in x.shape)] = x
    out.view(-1)[-1] = float("nan")
    return out


def test_mask_invariance_and_garbage_in_padding() -> None:
    s, t, x, _ = case("5to2_values_T2")
    s, t, x = s[:1, :, :, :3].detach(), t[:1, :, :, :3], x[:1, :, :3]  # one sample, no padding of its own
    t, s = t / t.sum(-1, keepdim=True), (s / s.sum(-1, keepdim=True)).requires_grad_(True)
    plain = L.squeezing_heads_kl(s, t, teacher_values=x, temperature=2.0)
    (g_plain,) = torch.autograd.grad(plain, s)
    sp = pad(s.detach(), {2: 2, 3: 3}, 1).requires_grad_(True)
    qm, km = torch.tensor([[True] * Q + [False] * 2]), torch.tensor([[True] * 3 + [False] * 3])
    tp, xp = pad(t, {2: 2, 3: 3}, 2), pad(x, {2: 3}, 3)
    padded = L.squeezing_heads_kl(sp, tp, teacher_values=xp, query_mask=qm, key_mask=km, temperature=2.0)
    (g_pad,) = torch.autograd.grad(padded, sp)
    torch.testing.assert_close(padded, plain, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(g_pad[:, :, :Q, :3], g_plain, rtol=1e-9, atol=1e-12)
    assert torch.all(g_pad[:, :, Q:] == 0) and torch.all(g_pad[:, :, :, 3:] == 0)


def test_gradients_reach_the_student_only() -> None:
    s, t, x, _ = case("5to2_values_T2")
    s, t, x = s.requires_grad_(True), t.requires_grad_(True), x.requires_grad_(True)
    loss(s, t, x, temperature=2.0).backward()
    assert s.grad is not None and torch.isfinite(s.grad).all() and s.grad.abs().sum() > 0
    assert t.grad is None and x.grad is None


def test_sum_is_hs_times_per_head_and_half_precision_runs_in_float32() -> None:
    s, t, x, opts = case("7to3_values_noT2")
    per_head = loss(s, t, x, **opts)
    torch.testing.assert_close(loss(s, t, x, reduction="sum", **opts), 3 * per_head, rtol=1e-12, atol=0)
    half = loss(s.half(), t.half(), x.half(), **opts)
    assert half.dtype == torch.float32 and half.item() == pytest.approx(per_head.item(), rel=2e-2)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"student": torch.rand(2, 3, 4)}, "4-D"),
        ({"reduction": "mean"}, "'per_head'"),
        ({"student": torch.rand(2, 6, 3, 4)}, "1 <= Hs <= Ht"),
        ({"temperature": 0.0}, "temperature"),
        ({"partial_round": "middle"}, "'leading' or 'trailing'"),
        ({"teacher_values": torch.rand(2, 5, 3, 2)}, r"\(B, Ht, K, D\)"),
        ({"teacher_values": [1.0]}, "not a params value"),
    ],
)
def test_errors_are_one_line(kwargs: dict, match: str) -> None:
    args = {"student": torch.rand(2, 2, 3, 4), "teacher": torch.rand(2, 5, 3, 4), **kwargs}
    with pytest.raises(ConfigError, match=match) as err:
        L.squeezing_heads_kl(args.pop("student"), args.pop("teacher"), **args)
    assert "\n" not in str(err.value)


def test_registered_with_its_contract() -> None:
    fn = L.get("squeezing_heads_kl")
    assert fn is L.squeezing_heads_kl and (fn.version, fn.kind, fn.heads) == (2, "attention", "student")
