"""Mechanism diagnostics: does a student cover every teacher head, or are some heads left behind?

The paper's title claim ("no head left behind") is about coverage: after one-to-one distillation with fewer student
heads, the surplus teacher heads have no student head that reproduces them; AMAD's mixture targets should leave
none uncovered. :func:`head_coverage` measures it on captured maps: for each teacher head i, the KL of the
student head that reproduces it best, ``min_j mean_r KL(t_i[r] || s_j[r])``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from amad.losses.masking import LOG_EPS, TINY, prepare_maps


@torch.no_grad()
def head_kl_sums(
    student: Tensor, teacher: Tensor, *, query_mask: Tensor | None = None, key_mask: Tensor | None = None
) -> tuple[Tensor, int]:
    """The sum over samples of the mean-row KL(t_i || s_j) of every head pair, and the number of samples summed.

    Sums from several batches add up; divide by the total count for the mean over samples.

    Args:
        student: (B, Hs, Q, K) probabilities. teacher: (B, Ht, Q, K) probabilities.
        query_mask: (B, Q) bool. key_mask: (B, K) bool. True = valid.

    Returns:
        (Ht, Hs) float64 sums, and the number of samples with at least one valid row.
    """
    maps = prepare_maps("head_coverage", student, teacher, query_mask, key_mask)
    t, s = maps.teacher.double(), maps.student.double()  # (B, Ht, Q, K), (B, Hs, Q, K)
    neg_entropy = (t * t.clamp_min(TINY).log()).sum(-1)  # (B, Ht, Q)
    cross = torch.einsum("bhqk,bjqk->bhjq", t, (s + LOG_EPS).log())  # (B, Ht, Hs, Q)
    kl = neg_entropy[:, :, None, :] - cross  # (B, Ht, Hs, Q)
    if maps.valid is not None:
        rows = maps.valid.any(-1)[:, None, :, :].to(kl.dtype)  # (B, 1, 1, Q): valid query rows
        kl = kl * rows
    per_sample = kl.sum(-1) / maps.rows.double().clamp_min(1)[:, None, None]  # (B, Ht, Hs)
    has = maps.rows > 0  # (B,)
    return per_sample[has].sum(0), int(has.sum())


@torch.no_grad()
def head_coverage(
    student: Tensor, teacher: Tensor, *, query_mask: Tensor | None = None, key_mask: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Per teacher head, the mean-row KL to its closest student head, and which head that is.

    Args:
        student: (B, Hs, Q, K) probabilities. teacher: (B, Ht, Q, K) probabilities.
        query_mask: (B, Q) bool. key_mask: (B, K) bool. True = valid.

    Returns:
        (Ht,) the coverage KL of every teacher head (lower = better covered; 0 when some student head copies it),
        and (Ht,) the index of the student head that attains it. Each KL is averaged over the valid rows of a
        sample, then over the samples that have any.
    """
    sums, count = head_kl_sums(student, teacher, query_mask=query_mask, key_mask=key_mask)
    return coverage_from_sums(sums, count)


def coverage_from_sums(sums: Tensor, count: int) -> tuple[Tensor, Tensor]:
    """(Ht,) coverage KL and (Ht,) closest student head from :func:`head_kl_sums` totals."""
    best, index = (sums / max(count, 1)).min(dim=1)  # (Ht, Hs) -> (Ht,), (Ht,)
    return best, index
