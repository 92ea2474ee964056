"""Invariances, zeros, gradients and precision of the attention losses."""

from __future__ import annotations

import pytest
import torch

import amad.losses as L

HT, HS = 4, 2


def maps(b: int, h: int, q: int, k: int, seed: int, sharp: float = 1.0, dtype=torch.float64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.softmax(sharp * torch.randn(b, h, q, k, generator=g, dtype=dtype), dim=-1)


# Every attention loss as (student, teacher, **masks) -> scalar, for Ht = 4 and Hs = 2.
LOSSES = {
    "amad_kl": lambda s, t, **m: L.amad_kl(s, t, **m),
    "amad_l2": lambda s, t, **m: L.amad_l2(s, t, **m),
    "amad_token_kl": lambda s, t, **m: L.amad_token_kl(s, t, tau=0.7, **m),
    "one_to_one_kl": lambda s, t, **m: L.one_to_one_kl(s, t, teacher_heads=[2, 0], **m),
    "one_to_one_mse": lambda s, t, **m: L.one_to_one_mse(s, t, teacher_heads=[2, 0], **m),
    "head_mean_kl": lambda s, t, **m: L.head_mean_kl(s, t, **m),
    "alignment_sum": lambda s, t, **m: (L.alignment(s, t, tau=0.3, **m) ** 2).sum(),
}


def pad(x: torch.Tensor, q_extra: int, k_extra: int, seed: int) -> torch.Tensor:
    """Append q_extra query rows and k_extra keys filled with garbage (positive noise, one NaN)."""
    b, h, q, k = x.shape
    g = torch.Generator().manual_seed(seed)
    out = torch.rand(b, h, q + q_extra, k + k_extra, generator=g, dtype=x.dtype)
    out[:, :, :q, :k] = x
    out[0, 0, -1, -1] = float("nan")
    return out


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_padding_invariance(name: str) -> None:
    loss = LOSSES[name]
    s, t = maps(2, HS, 3, 5, 0), maps(2, HT, 3, 5, 1)
    s.requires_grad_(True)
    plain = loss(s, t)
    (g_plain,) = torch.autograd.grad(plain, s)
    sp = pad(s.detach(), 2, 3, 2).requires_grad_(True)
    qm = torch.tensor([[True] * 3 + [False] * 2] * 2)
    km = torch.tensor([[True] * 5 + [False] * 3] * 2)
    padded = loss(sp, pad(t, 2, 3, 3), query_mask=qm, key_mask=km)
    (g_pad,) = torch.autograd.grad(padded, sp)
    torch.testing.assert_close(padded, plain, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(g_pad[:, :, :3, :5], g_plain, rtol=1e-9, atol=1e-12)
    assert torch.all(g_pad[:, :, 3:] == 0) and torch.all(g_pad[:, :, :, 5:] == 0)


@pytest.mark.parametrize("name", sorted(set(LOSSES) - {"alignment_sum"}))
def test_fully_padded_sample_is_left_out(name: str) -> None:
    loss = LOSSES[name]
    s, t = maps(2, HS, 3, 4, 4), maps(2, HT, 3, 4, 5)
    qm = torch.tensor([[True, True, True], [False, False, False]])
    both = loss(s, t, query_mask=qm)
    first = loss(s[:1], t[:1])
    torch.testing.assert_close(both, first, rtol=1e-10, atol=1e-12)
    none_valid = loss(s, t, key_mask=torch.zeros(2, 4, dtype=torch.bool))
    assert none_valid.item() == 0.0


def test_zero_when_student_equals_teacher() -> None:
    s = maps(2, 3, 4, 6, 6).requires_grad_(True)
    assert L.one_to_one_kl(s, s.detach()).abs().item() < 1e-9
    assert L.one_to_one_mse(s, s.detach()).abs().item() < 1e-9
    # head_mean_kl: teacher groups made of copies of the student head average back to the student.
    assert L.head_mean_kl(s, s.detach().repeat_interleave(2, dim=1)).abs().item() < 1e-9
    # AMAD: with distinct (peaky) heads, a -> identity as tau -> 0, so the loss -> 0; at tau = 1 it is not 0.
    # Head h peaks on key (r + 2h) mod K in row r, so heads differ in every row (token-level alignment too).
    r, h = torch.arange(4), torch.arange(3)
    peak = torch.nn.functional.one_hot((r[None, :] + 2 * h[:, None]) % 6, 6).double()  # (Hs, Q, K)
    sharp = torch.softmax(4 * peak + maps(2, 3, 4, 6, 7).log(), dim=-1)  # (B, Hs, Q, K)
    for loss in (L.amad_kl, L.amad_l2, L.amad_token_kl):
        assert loss(sharp, sharp, tau=1e-3).item() < 1e-8, loss.__name__
        assert loss(sharp, sharp, tau=1.0).item() > 1e-3, loss.__name__


def test_amad_is_invariant_to_head_order() -> None:
    s, t = maps(2, 3, 4, 5, 8), maps(2, 5, 4, 5, 9)
    perm_s, perm_t = torch.tensor([2, 0, 1]), torch.tensor([4, 1, 3, 0, 2])
    for loss in (L.amad_kl, L.amad_l2, L.amad_token_kl):
        torch.testing.assert_close(loss(s[:, perm_s], t[:, perm_t]), loss(s, t), rtol=1e-10, atol=0)
    # The one-to-one baseline is not: the pairing is arbitrary.
    assert not torch.isclose(L.one_to_one_kl(s[:, perm_s], t[:, :3]), L.one_to_one_kl(s, t[:, :3]))


def test_causal_zeros_on_valid_keys_stay_finite() -> None:
    causal = torch.tril(torch.ones(4, 4, dtype=torch.bool))
    scores = torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(10))
    s = torch.softmax(scores.masked_fill(~causal, float("-inf")), -1).requires_grad_(True)
    t = torch.softmax((2 * scores).masked_fill(~causal, float("-inf")), -1)
    for loss in (L.amad_kl, L.amad_l2, L.amad_token_kl, L.one_to_one_kl, L.one_to_one_mse):
        value = loss(s, t)
        (grad,) = torch.autograd.grad(value, s)
        assert torch.isfinite(value) and torch.isfinite(grad).all(), loss.__name__


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_gradient_reaches_student_never_teacher(name: str) -> None:
    s = maps(2, HS, 3, 4, 11).requires_grad_(True)
    t = maps(2, HT, 3, 4, 12).requires_grad_(True)
    LOSSES[name](s, t, query_mask=torch.tensor([[True, True, False], [True, True, True]])).backward()
    assert t.grad is None
    assert s.grad is not None and torch.isfinite(s.grad).all() and s.grad.abs().sum() > 0


def test_detach_alignment_changes_gradient_not_value() -> None:
    s, t = maps(1, HS, 3, 4, 13).requires_grad_(True), maps(1, HT, 3, 4, 14)
    for loss in (L.amad_kl, L.amad_l2, L.amad_token_kl):
        a, b = loss(s, t, tau=0.2), loss(s, t, tau=0.2, detach_alignment=True)
        torch.testing.assert_close(a, b)
        (ga,) = torch.autograd.grad(a, s)
        (gb,) = torch.autograd.grad(b, s)
        assert (ga - gb).abs().max() > 1e-6, loss.__name__


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_gradcheck_float64(name: str) -> None:
    s = maps(2, HS, 2, 3, 15).requires_grad_(True)
    t = maps(2, HT, 2, 3, 16)
    qm, km = torch.tensor([[True, True], [True, False]]), torch.tensor([[True, True, True], [True, True, False]])
    assert torch.autograd.gradcheck(lambda x: LOSSES[name](x, t, query_mask=qm, key_mask=km), (s,))


def test_amad_projected_identity_start_and_gradcheck() -> None:
    s, t = maps(2, HS, 2, 3, 17), maps(2, HT, 2, 3, 18)
    qm = torch.tensor([[True, True], [True, False]])
    module = L.AmadProjected(6, tau=0.5).double()
    assert module.weight.shape == (6, 6) and module.bias.shape == (6,)
    torch.testing.assert_close(module(s, t, query_mask=qm), L.amad_kl(s, t, query_mask=qm, tau=0.5, reduction="sum"))
    with torch.no_grad():
        module.weight.add_(0.1 * torch.randn(6, 6, generator=torch.Generator().manual_seed(19), dtype=torch.float64))
        module.bias.fill_(0.01)
    s.requires_grad_(True)
    weight = module.weight.detach().clone().requires_grad_(True)

    def projected(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        params = {"weight": w, "bias": module.bias}
        return torch.func.functional_call(module, params, (x, t), {"query_mask": qm})

    assert torch.autograd.gradcheck(projected, (s, weight))
    module(s, t).backward()
    assert module.weight.grad is not None and module.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name", sorted(LOSSES))
def test_half_precision_is_computed_in_float32(name: str, dtype: torch.dtype) -> None:
    s, t = maps(2, HS, 3, 4, 20).to(dtype), maps(2, HT, 3, 4, 21).to(dtype)
    got = LOSSES[name](s.requires_grad_(True), t)
    assert got.dtype == torch.float32
    want = LOSSES[name](s.float(), t.float())
    torch.testing.assert_close(got, want)
    got.backward()
    assert s.grad.dtype == dtype and torch.isfinite(s.grad.float()).all()


def test_logit_kd_properties() -> None:
    g = torch.Generator().manual_seed(22)
    zs = torch.randn(2, 3, 7, generator=g, requires_grad=True)
    zt = torch.randn(2, 3, 7, generator=g).requires_grad_(True)
    assert L.logit_kd(zs, zs.detach()).abs().item() < 1e-6
    mask = torch.tensor([[True, True, False], [True, False, False]])
    value = L.logit_kd(zs, zt, mask=mask, temperature=2.0)
    # Padded tokens may hold anything, including -inf teacher logits, and change nothing.
    zt_bad = zt.detach().clone()
    zt_bad[0, 2] = float("nan")
    zt_bad[1, 0, 3] = float("-inf")
    assert torch.isfinite(L.logit_kd(zs, zt_bad, mask=mask))
    value.backward()
    assert zt.grad is None and zs.grad[mask].abs().sum() > 0 and torch.all(zs.grad[~mask] == 0)
    half = L.logit_kd(zs.detach().bfloat16(), zt.detach().bfloat16(), mask=mask, temperature=2.0)
    assert half.dtype == torch.float32
    zs64 = zs.detach().double().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: L.logit_kd(x, zt.detach().double(), mask=mask, temperature=3.0), (zs64,))


def plain_amad(s: torch.Tensor, t: torch.Tensor, tau: float, detach: bool, variant: str) -> torch.Tensor:
    """The AMAD formulas in plain autograd ops (no masks), as a check on the hand-written backward passes."""
    normalize = torch.nn.functional.normalize
    b, _, q, k = s.shape
    if variant == "token":  # groups are query rows: (B, H, Q, K) -> (B·Q, H, K)
        sf, tf = s.transpose(1, 2).reshape(b * q, -1, k), t.transpose(1, 2).reshape(b * q, -1, k)
    else:
        sf, tf = s.flatten(2), t.flatten(2)  # (B, H, Q*K)
    a = torch.softmax(normalize(tf, dim=-1) @ normalize(sf, dim=-1).transpose(1, 2) / tau, dim=-1)  # (G, Ht, Hs)
    a = a.detach() if detach else a
    if variant == "l2":
        return (normalize(tf, dim=-1) - a @ normalize(sf, dim=-1)).square().sum((1, 2)).mean()
    per_group = (tf * tf.log()).sum((1, 2)) - (tf * (a @ sf).log()).sum((1, 2))  # (G,)
    return per_group.sum() / (b * q)


@pytest.mark.parametrize("detach", [False, True])
@pytest.mark.parametrize("variant", ["kl", "l2", "token"])
def test_fused_backward_matches_plain_autograd(variant: str, detach: bool) -> None:
    loss = {"kl": L.amad_kl, "l2": L.amad_l2, "token": L.amad_token_kl}[variant]
    s, t = maps(3, 3, 4, 5, 23).requires_grad_(True), maps(3, 5, 4, 5, 24)
    fused = loss(s, t, tau=0.4, detach_alignment=detach, reduction="sum")  # plain_amad is the sum over heads
    (g_fused,) = torch.autograd.grad(fused, s)
    plain = plain_amad(s, t, 0.4, detach, variant)
    (g_plain,) = torch.autograd.grad(plain, s)
    torch.testing.assert_close(fused, plain, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(g_fused, g_plain, rtol=1e-7, atol=1e-10)
