"""AMAD (Zhao et al., AAAI 2024): soft head alignment by cosine similarity, and the losses built on it.

Every teacher head i learns from a mixture of all student heads, weighted by
``a_ij = softmax_j(cos(t_i, s_j) / tau)`` (Eq. 2). All functions take post-softmax maps
student (B, Hs, Q, K) and teacher (B, Ht, Q, K), optional bool masks query_mask (B, Q) and key_mask (B, K)
(True = valid), compute in float32 for half inputs (float64 stays float64), never pass gradient to the teacher,
and return the mean over the batch of a per-sample value (samples with no valid query row are left out).

Reduction over heads (``reduction``): each loss sums over the Ht teacher heads. ``"per_head"`` (the default, and
the suite's) divides that sum by Ht, so a weight means the same strength whatever the head counts, and one-to-one
(which sums over Hs student heads and divides by Hs) sits on the same per-head scale. ``"sum"`` is the paper's
literal form; its size grows with Ht (issue 12, section 5).
"""

from __future__ import annotations

import torch
from torch import Tensor

from amad.losses.fused import gram_l2_sum, mixture_kl_sum
from amad.losses.masking import batch_mean, check_reduction, check_tau, cosine, prepare_maps, reduce_heads
from amad.losses.registry import register


def head_weights(t: Tensor, s: Tensor, tau: float, detach: bool) -> Tensor:
    """a = softmax over student heads of cos / tau. t: (..., Ht, n), s: (..., Hs, n) -> (..., Ht, Hs)."""
    a = torch.softmax(cosine(t, s) / tau, dim=-1)  # (..., Ht, Hs)
    return a.detach() if detach else a


def mixture_kl(t: Tensor, s: Tensor, tau: float, detach: bool, valid: Tensor | None = None) -> Tensor:
    """Per-sample sum over teacher heads and valid rows of KL(t_i[r] || Σ_j a_ij s_j[r]).

    t: (B, Ht, Q, K) detached with invalid entries zeroed, s: (B, Hs, Q, K), valid: (B, 1, Q, K) bool or None
    -> (B,). One batched matmul forms all mixtures (no (B, Ht, Hs, Q, K) tensor is built); forward and backward
    are fused (amad.losses.fused), which also zeroes the invalid student entries.
    """
    tf, sf = t.flatten(2), s.flatten(2)  # (B, H, Q, K) -> (B, H, Q*K)
    vf = None if valid is None else valid.flatten(2)  # (B, 1, Q, K) -> (B, 1, Q*K)
    return mixture_kl_sum(tf, sf, tau, detach, vf)  # (B,)


def alignment(
    student: Tensor,
    teacher: Tensor,
    *,
    tau: float = 1.0,
    query_mask: Tensor | None = None,
    key_mask: Tensor | None = None,
) -> Tensor:
    """AMAD alignment weights (Eq. 2): a_ij = softmax_j(cos(t_i, s_j) / tau).

    The cosine is taken between the flattened maps over the valid (query, key) entries only.

    Args:
        student: (B, Hs, Q, K) probabilities. teacher: (B, Ht, Q, K) probabilities (no gradient flows to it).
        tau: softmax temperature (> 0); the paper uses 1.0.
        query_mask: (B, Q) bool, True = valid. key_mask: (B, K) bool, True = valid.

    Returns:
        (B, Ht, Hs): for each sample, each teacher row is a distribution over student heads (no reduction).
    """
    tau = check_tau(tau, "alignment")
    maps = prepare_maps("alignment", student, teacher, query_mask, key_mask)
    return head_weights(maps.teacher.flatten(2), maps.student.flatten(2), tau, detach=False)  # (B, Ht, Hs)


@register("amad_kl", version=2, kind="attention", heads="teacher")
def amad_kl(
    student: Tensor,
    teacher: Tensor,
    *,
    query_mask: Tensor | None = None,
    key_mask: Tensor | None = None,
    tau: float = 1.0,
    detach_alignment: bool = False,
    reduction: str = "per_head",
) -> Tensor:
    """AMAD KL variant (Eq. 9, the paper's best): L = Σ_i mean_r KL(t_i[r] || Σ_j a_ij s_j[r]).

    ``a`` is :func:`alignment`; each mixture row is a convex mix of student rows, hence a distribution.

    Args:
        student: (B, Hs, Q, K) probabilities. teacher: (B, Ht, Q, K) probabilities (no gradient flows to it).
        query_mask: (B, Q) bool. key_mask: (B, K) bool. True = valid.
        tau: alignment temperature (> 0). detach_alignment: stop the gradient through ``a``.
        reduction: "per_head" divides the sum over teacher heads by Ht; "sum" keeps the paper's sum.

    Returns:
        Scalar: per sample, the sum (or with "per_head" the mean) over teacher heads of the mean over valid query
        rows of the KL summed over valid keys; then the mean over samples. log takes m + 1e-12, so zeros give no
        inf/NaN.
    """
    tau = check_tau(tau, "amad_kl")
    reduction = check_reduction(reduction, "amad_kl")
    maps = prepare_maps("amad_kl", student, teacher, query_mask, key_mask, zero_student=False)
    value = batch_mean(mixture_kl(maps.teacher, maps.student, tau, detach_alignment, maps.valid), maps.rows)
    return reduce_heads(value, maps.teacher.shape[1], reduction)


@register("amad_l2", version=2, kind="attention", heads="teacher")
def amad_l2(
    student: Tensor,
    teacher: Tensor,
    *,
    query_mask: Tensor | None = None,
    key_mask: Tensor | None = None,
    tau: float = 1.0,
    detach_alignment: bool = False,
    reduction: str = "per_head",
) -> Tensor:
    """AMAD L2 variant (Eqs. 4–5): L = Σ_i || t̂_i − Σ_j a_ij ŝ_j ||², hats = L2-normalised flattened maps.

    Normalisation and the squared norm run over the valid (query, key) entries. Computed exactly through Gram
    matrices, ||t̂_i||² − 2 Σ_j a_ij w_ij + Σ_jl a_ij a_il ŝ_j·ŝ_l with w = cos(t̂, ŝ), so only (B, H, H) tensors
    are formed (hand-written backward in amad.losses.fused).

    Args:
        student: (B, Hs, Q, K) probabilities. teacher: (B, Ht, Q, K) probabilities (no gradient flows to it).
        query_mask: (B, Q) bool. key_mask: (B, K) bool. True = valid.
        tau: alignment temperature (> 0). detach_alignment: stop the gradient through ``a``.
        reduction: "per_head" divides the sum over teacher heads by Ht; "sum" keeps the paper's sum.

    Returns:
        Scalar: per sample, the sum (or with "per_head" the mean) over teacher heads of the squared distance; then
        the mean over samples.
    """
    tau = check_tau(tau, "amad_l2")
    reduction = check_reduction(reduction, "amad_l2")
    maps = prepare_maps("amad_l2", student, teacher, query_mask, key_mask)
    tf, sf = maps.teacher.flatten(2), maps.student.flatten(2)  # (B, H, Q, K) -> (B, H, Q*K)
    per_sample = gram_l2_sum(tf, sf, tau, detach_alignment).clamp_min(0)  # (B,); rounding can go below 0
    value = batch_mean(per_sample, (maps.entries > 0).to(per_sample.dtype))
    return reduce_heads(value, maps.teacher.shape[1], reduction)


@register("amad_token_kl", version=2, kind="attention", heads="teacher")
def amad_token_kl(
    student: Tensor,
    teacher: Tensor,
    *,
    query_mask: Tensor | None = None,
    key_mask: Tensor | None = None,
    tau: float = 1.0,
    detach_alignment: bool = False,
    reduction: str = "per_head",
) -> Tensor:
    """AMAD token-level variant (Eq. 12): L = Σ_i mean_r KL(t_i[r] || Σ_j a^(r)_ij s_j[r]).

    The alignment is computed per query row from that row's vectors: a^(r)_ij = softmax_j(cos(t_i[r], s_j[r]) / tau),
    the cosine over the valid keys of row r.

    Args:
        student: (B, Hs, Q, K) probabilities. teacher: (B, Ht, Q, K) probabilities (no gradient flows to it).
        query_mask: (B, Q) bool. key_mask: (B, K) bool. True = valid.
        tau: alignment temperature (> 0). detach_alignment: stop the gradient through ``a``.
        reduction: "per_head" divides the sum over teacher heads by Ht; "sum" keeps the paper's sum.

    Returns:
        Scalar: per sample, the sum (or with "per_head" the mean) over teacher heads of the mean over valid query
        rows of the KL summed over valid keys; then the mean over samples.
    """
    tau = check_tau(tau, "amad_token_kl")
    reduction = check_reduction(reduction, "amad_token_kl")
    maps = prepare_maps("amad_token_kl", student, teacher, query_mask, key_mask, zero_student=False)
    b, hs, q, k = maps.student.shape
    t_rows = maps.teacher.transpose(1, 2).reshape(b * q, -1, k)  # (B, Ht, Q, K) -> (B·Q, Ht, K)
    s_rows = maps.student.transpose(1, 2).reshape(b * q, hs, k)  # (B, Hs, Q, K) -> (B·Q, Hs, K)
    v_rows = None if maps.valid is None else maps.valid.transpose(1, 2).reshape(b * q, 1, k)  # -> (B·Q, 1, K)
    per_sample = mixture_kl_sum(t_rows, s_rows, tau, detach_alignment, v_rows).view(b, q).sum(1)  # (B·Q,) -> (B,)
    return reduce_heads(batch_mean(per_sample, maps.rows), maps.teacher.shape[1], reduction)
