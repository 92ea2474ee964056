"""Baselines: one-to-one head distillation (teacher head π(i) teaches student head i) and head averaging.

All functions take post-softmax maps student (B, Hs, Q, K) and teacher (B, Ht, Q, K), optional bool masks
query_mask (B, Q) and key_mask (B, K) (True = valid), compute in float32 for half inputs, never pass gradient
to the teacher, and return the mean over the batch of a per-sample value (samples with nothing valid left out).

Reduction over heads (``reduction``): each loss sums over the Hs student heads; ``"per_head"`` (the default)
divides by Hs, ``"sum"`` keeps the sum (see amad.losses.head_alignment for why every loss has both).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from amad.errors import ConfigError
from amad.losses.masking import batch_mean, check_reduction, kl_sum, prepare_maps, reduce_heads
from amad.losses.registry import register


def select_teacher_heads(name: str, teacher: Tensor, hs: int, teacher_heads: Sequence[int] | None) -> Tensor:
    """Pick the teacher head π(i) for every student head i. teacher: (B, Ht, Q, K) -> (B, Hs, Q, K)."""
    ht = teacher.shape[1]
    if teacher_heads is None:
        if ht != hs:
            raise ConfigError(
                f"{name}: the teacher has {ht} heads and the student {hs}; set the option teacher_heads to "
                f"{hs} teacher head indices (e.g. {list(range(min(hs, ht)))}...) or use amad_kl"
            )
        return teacher
    idx = [int(i) for i in teacher_heads]
    if len(idx) != hs:
        raise ConfigError(
            f"{name}: teacher_heads has {len(idx)} indices but the student has {hs} heads; "
            "give one teacher head index per student head"
        )
    bad = [i for i in idx if not 0 <= i < ht]
    if bad:
        raise ConfigError(
            f"{name}: teacher_heads index {bad[0]} is out of range for a teacher with {ht} heads; use 0..{ht - 1}"
        )
    if idx == list(range(idx[0], idx[0] + hs)):
        return teacher.narrow(1, idx[0], hs)  # (B, Ht, Q, K) -> (B, Hs, Q, K), a view
    return teacher.index_select(1, torch.tensor(idx, device=teacher.device))  # (B, Ht, Q, K) -> (B, Hs, Q, K)


@register("one_to_one_kl", version=2, kind="attention", heads="student")
def one_to_one_kl(
    student: Tensor,
    teacher: Tensor,
    *,
    query_mask: Tensor | None = None,
    key_mask: Tensor | None = None,
    teacher_heads: Sequence[int] | None = None,
    reduction: str = "per_head",
) -> Tensor:
    """One-to-one KL (MiniLM-style): L = Σ_i mean_r KL(t_π(i)[r] || s_i[r]) (divided by Hs with "per_head").

    Args:
        student: (B, Hs, Q, K) probabilities. teacher: (B, Ht, Q, K) probabilities (no gradient flows to it).
        query_mask: (B, Q) bool. key_mask: (B, K) bool. True = valid.
        teacher_heads: Hs teacher indices giving π; None means the identity and needs Ht == Hs.
        reduction: "per_head" divides the sum over student heads by Hs; "sum" keeps the sum.

    Returns:
        Scalar: per sample, the sum (or with "per_head" the mean) over student heads of the mean over valid query
        rows of the KL summed over valid keys; then the mean over samples. log takes s + 1e-12, so zeros give no
        inf/NaN.
    """
    reduction = check_reduction(reduction, "one_to_one_kl")
    maps = prepare_maps("one_to_one_kl", student, teacher, query_mask, key_mask)
    t = select_teacher_heads("one_to_one_kl", maps.teacher, maps.student.shape[1], teacher_heads)
    return reduce_heads(batch_mean(kl_sum(t, maps.student), maps.rows), maps.student.shape[1], reduction)


@register("one_to_one_mse", version=2, kind="attention", heads="student")
def one_to_one_mse(
    student: Tensor,
    teacher: Tensor,
    *,
    query_mask: Tensor | None = None,
    key_mask: Tensor | None = None,
    teacher_heads: Sequence[int] | None = None,
    reduction: str = "per_head",
) -> Tensor:
    """One-to-one MSE on probabilities: L = Σ_i mean_(r,k) (t_π(i)[r, k] − s_i[r, k])².

    Args:
        student: (B, Hs, Q, K) probabilities. teacher: (B, Ht, Q, K) probabilities (no gradient flows to it).
        query_mask: (B, Q) bool. key_mask: (B, K) bool. True = valid.
        teacher_heads: Hs teacher indices giving π; None means the identity and needs Ht == Hs.
        reduction: "per_head" divides the sum over student heads by Hs; "sum" keeps the sum.

    Returns:
        Scalar: per sample, the sum (or with "per_head" the mean) over student heads of the mean over valid
        (query, key) entries of the squared difference; then the mean over samples.
    """
    reduction = check_reduction(reduction, "one_to_one_mse")
    maps = prepare_maps("one_to_one_mse", student, teacher, query_mask, key_mask)
    t = select_teacher_heads("one_to_one_mse", maps.teacher, maps.student.shape[1], teacher_heads)
    per_sample = (t - maps.student).square().flatten(1).sum(1)  # (B, Hs, Q, K) -> (B,)
    return reduce_heads(batch_mean(per_sample, maps.entries), maps.student.shape[1], reduction)


@register("head_mean_kl", version=2, kind="attention", heads="student")
def head_mean_kl(
    student: Tensor,
    teacher: Tensor,
    *,
    query_mask: Tensor | None = None,
    key_mask: Tensor | None = None,
    reduction: str = "per_head",
) -> Tensor:
    """Head averaging: teacher heads averaged in Hs contiguous groups of Ht/Hs, then :func:`one_to_one_kl`.

    L = Σ_g mean_r KL(t̄_g[r] || s_g[r]) with t̄_g = mean of teacher heads g·Ht/Hs .. (g+1)·Ht/Hs − 1.

    Args:
        student: (B, Hs, Q, K) probabilities. teacher: (B, Ht, Q, K) probabilities, Ht a multiple of Hs.
        query_mask: (B, Q) bool. key_mask: (B, K) bool. True = valid.
        reduction: "per_head" divides the sum over the Hs groups by Hs; "sum" keeps the sum.

    Returns:
        Scalar with the reduction of :func:`one_to_one_kl`.
    """
    reduction = check_reduction(reduction, "head_mean_kl")
    maps = prepare_maps("head_mean_kl", student, teacher, query_mask, key_mask)
    b, hs, q, k = maps.student.shape
    ht = maps.teacher.shape[1]
    if ht % hs:
        raise ConfigError(
            f"head_mean_kl: the teacher's {ht} heads cannot be split into {hs} equal groups (one per student head); "
            "use amad_kl, or one_to_one_kl with teacher_heads"
        )
    t = maps.teacher.view(b, hs, ht // hs, q, k).mean(2)  # (B, Ht, Q, K) -> (B, Hs, Ht/Hs, Q, K) -> (B, Hs, Q, K)
    return reduce_heads(batch_mean(kl_sum(t, maps.student), maps.rows), hs, reduction)
