"""Fused forward/backward of the AMAD losses with hand-written gradients (fewer passes, fewer temporaries).

Autograd on the plain formulas keeps several (G, Ht, n) temporaries, runs elementwise backward passes (log, mul,
norm) and sums three or four student gradients. The functions here give the same values and gradients (checked by
gradcheck and against autograd in the tests) and write the student gradient into one buffer.

Notation, per group g (a sample, or one query row for the token-level variant): teacher rows t (Ht, n), student
rows s (Hs, n), w_ij = cos(t_i, s_j), a = softmax_j(w / tau). Gradients never flow to t.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import FunctionCtx, once_differentiable

from amad.losses import cpu_kernel
from amad.losses.masking import LOG_EPS, NORM_EPS, TINY


class MixtureKL(torch.autograd.Function):
    """KL_g = Σ_ie t_ie log(t_ie / (m_ie + LOG_EPS)) with the mixture m = a s (Ht, n).

    When the student needs a gradient, the forward also forms dKL_g/ds (G, Hs, n) right away, while t, s and
    R = t / (m + eps) are still in cache, and keeps only that: each group's loss is a scalar, so the backward just
    scales it by the incoming gradient. float32 CPU maps go to the fused C kernel (amad.losses.cpu_kernel), anything
    else to :func:`torch_mixture_kl`; both compute the same quantities.
    """

    @staticmethod
    def forward(
        ctx: FunctionCtx,
        t: Tensor,
        s: Tensor,
        valid: Tensor | None,
        tau: float,
        detach_alignment: bool,
        want_grad: bool,
    ) -> Tensor:
        """t: (G, Ht, n) without gradient, zero at invalid entries; s: (G, Hs, n); valid: (G, 1, n) bool or None.

        Returns (G,). Invalid student entries are read as zero (even NaN) and get exactly zero gradient.
        """
        run = cpu_kernel.mixture_kl if cpu_kernel.usable(t, s) else torch_mixture_kl
        kl, grad_s = run(t, s, valid, tau, detach_alignment, want_grad)
        if grad_s is not None:
            ctx.save_for_backward(grad_s)
        return kl

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[None, Tensor, None, None, None, None]:
        (grad_s,) = ctx.saved_tensors  # dKL_g/ds: (G, Hs, n)
        return None, grad_s * grad[:, None, None], None, None, None, None  # (G, Hs, n) * (G, 1, 1)


def torch_mixture_kl(
    t: Tensor, s: Tensor, valid: Tensor | None, tau: float, detach_alignment: bool, want_grad: bool
) -> tuple[Tensor, Tensor | None]:
    """The PyTorch path of MixtureKL: per-group KL (G,) and, if ``want_grad``, dKL_g/ds (G, Hs, n).

    One logarithm per entry, on R = t / (m + eps) (dKL/dm = -R). Shapes as in MixtureKL.forward.
    """
    if valid is not None:
        s = torch.where(valid, s, s.new_zeros(()))  # (G, Hs, n)
    tn = torch.linalg.vector_norm(t, dim=-1).clamp_min(NORM_EPS)  # (G, Ht, n) -> (G, Ht)
    sn_raw = torch.linalg.vector_norm(s, dim=-1)  # (G, Hs, n) -> (G, Hs)
    sn = sn_raw.clamp_min(NORM_EPS)
    dots = torch.bmm(t, s.transpose(1, 2))  # (G, Ht, n) @ (G, n, Hs) -> (G, Ht, Hs)
    w = dots / (tn[:, :, None] * sn[:, None, :])  # (G, Ht, Hs)
    a = torch.softmax(w / tau, dim=-1)  # (G, Ht, Hs)
    ratio = torch.bmm(a, s).add_(LOG_EPS)  # m + eps: (G, Ht, Hs) @ (G, Hs, n) -> (G, Ht, n)
    torch.div(t, ratio, out=ratio)  # R = t / (m + eps), 0 where t = 0
    grad_s = None
    if want_grad:
        grad_s = _mixture_kl_grad(t, s, a, w, tn, sn, sn_raw >= NORM_EPS, ratio, tau, detach_alignment)
    return ratio.add_(TINY).log_().mul_(t).sum((1, 2)), grad_s  # Σ t log R, 0 where t = 0: (G, Ht, n) -> (G,)


def _mixture_kl_grad(
    t: Tensor,
    s: Tensor,
    a: Tensor,
    w: Tensor,
    tn: Tensor,
    sn: Tensor,
    sn_live: Tensor,
    ratio: Tensor,
    tau: float,
    detach_alignment: bool,
) -> Tensor:
    """dKL_g/ds for every group g: (G, Hs, n). Arguments as in MixtureKL.forward (ratio = R)."""
    neg_a_t = -a.transpose(1, 2)  # dKL/dm = -R, folded into a: (G, Hs, Ht)
    if detach_alignment:
        return torch.bmm(neg_a_t, ratio)  # (G, Hs, Ht) @ (G, Ht, n) -> (G, Hs, n)
    grad_a = -torch.bmm(ratio, s.transpose(1, 2))  # (G, Ht, n) @ (G, n, Hs) -> (G, Ht, Hs)
    grad_w = a * (grad_a - (grad_a * a).sum(-1, keepdim=True)) / tau  # softmax backward: (G, Ht, Hs)
    grad_d = grad_w / (tn[:, :, None] * sn[:, None, :])  # w = D / (|t| |s|): (G, Ht, Hs)
    coef = -(grad_w * w).sum(1) / sn * sn_live / sn  # d|s_j| term, divided by |s_j|: (G, Ht, Hs) -> (G, Hs)
    grad_s = s * coef[:, :, None]  # (G, Hs, n)
    grad_s.baddbmm_(neg_a_t, ratio)  # += (G, Hs, Ht) @ (G, Ht, n)
    return grad_s.baddbmm_(grad_d.transpose(1, 2), t)  # += (G, Hs, Ht) @ (G, Ht, n)


def mixture_kl_sum(t: Tensor, s: Tensor, tau: float, detach_alignment: bool, valid: Tensor | None = None) -> Tensor:
    """Per group Σ_i Σ_e KL terms of t_i against the mixture Σ_j a_ij s_j (see module docstring).

    t: (G, Ht, n) probabilities, zero at invalid entries (the gradient never flows to it), s: (G, Hs, n),
    valid: (G, 1, n) bool (True = valid) or None: invalid student entries are treated as 0 -> (G,).
    """
    want_grad = torch.is_grad_enabled() and s.requires_grad
    mask = None if valid is None else valid.contiguous()
    return MixtureKL.apply(t.detach().contiguous(), s.contiguous(), mask, tau, detach_alignment, want_grad)


class GramL2(torch.autograd.Function):
    """L2_g = Σ_i || t̂_i − Σ_j a_ij ŝ_j ||² through Gram matrices (hats: L2-normalised rows).

    Expanded: Σ_i |t̂_i|² − 2 Σ_ij a_ij w_ij + Σ_ijl a_ij G_jl a_il with G = ŝ ŝ^T, so the forward forms only
    (Ht, Hs) and (Hs, Hs) matrices. The backward is grad_s = A t + C s with small matrices
    A = gw^T / (|s_j| |t_i|) and C = (2 a^T a − diag(d)) / (|s_j| |s_l|), d_j = ŝ_j · grad_ŝ_j.
    """

    @staticmethod
    def forward(ctx: FunctionCtx, t: Tensor, s: Tensor, tau: float, detach_alignment: bool) -> Tensor:
        """t: (G, Ht, n) without gradient, s: (G, Hs, n) -> (G,)."""
        t_norm = torch.linalg.vector_norm(t, dim=-1)  # (G, Ht, n) -> (G, Ht)
        tn = t_norm.clamp_min(NORM_EPS)
        sn_raw = torch.linalg.vector_norm(s, dim=-1)  # (G, Hs, n) -> (G, Hs)
        sn = sn_raw.clamp_min(NORM_EPS)
        w = torch.bmm(t, s.transpose(1, 2)) / (tn[:, :, None] * sn[:, None, :])  # (G, Ht, n) @ (G, n, Hs)
        gram = torch.bmm(s, s.transpose(1, 2)) / (sn[:, :, None] * sn[:, None, :])  # (G, Hs, n) @ (G, n, Hs)
        a = torch.softmax(w / tau, dim=-1)  # (G, Ht, Hs)
        ag = torch.bmm(a, gram)  # (G, Ht, Hs) @ (G, Hs, Hs) -> (G, Ht, Hs)
        t_sq = (t_norm / tn).square().sum(-1)  # Σ_i |t̂_i|²: (G, Ht) -> (G,)
        value = t_sq - 2 * (a * w).sum((1, 2)) + (ag * a).sum((1, 2))  # (G,)
        ctx.save_for_backward(t, s, a, w, gram, ag, tn, sn, sn_raw >= NORM_EPS)
        ctx.tau, ctx.detach_alignment = tau, detach_alignment
        return value

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[None, Tensor, None, None]:
        t, s, a, w, gram, ag, tn, sn, sn_live = ctx.saved_tensors
        g = grad[:, None, None]  # (G, 1, 1)
        grad_w = -2 * a * g  # direct term: (G, Ht, Hs)
        if not ctx.detach_alignment:
            grad_a = (2 * ag - 2 * w) * g  # (G, Ht, Hs)
            grad_w = grad_w + a * (grad_a - (grad_a * a).sum(-1, keepdim=True)) / ctx.tau  # softmax backward
        m2 = 2 * torch.bmm(a.transpose(1, 2), a) * g  # dL/dG + its transpose: (G, Hs, Ht) @ (G, Ht, Hs)
        d = (grad_w * w).sum(1) + (m2 * gram).sum(2)  # ŝ_j · grad_ŝ_j: (G, Hs)
        c = m2 - torch.diag_embed(d * sn_live)  # (G, Hs, Hs)
        c = c / (sn[:, :, None] * sn[:, None, :])
        coef_t = grad_w.transpose(1, 2) / (sn[:, :, None] * tn[:, None, :])  # (G, Hs, Ht)
        grad_s = torch.bmm(c, s)  # (G, Hs, Hs) @ (G, Hs, n) -> (G, Hs, n)
        grad_s.baddbmm_(coef_t, t)  # += (G, Hs, Ht) @ (G, Ht, n)
        return None, grad_s, None, None


def gram_l2_sum(t: Tensor, s: Tensor, tau: float, detach_alignment: bool) -> Tensor:
    """Per group Σ_i || t̂_i − Σ_j a_ij ŝ_j ||². t: (G, Ht, n) (no gradient flows to it), s: (G, Hs, n) -> (G,)."""
    return GramL2.apply(t.detach().contiguous(), s.contiguous(), tau, detach_alignment)
