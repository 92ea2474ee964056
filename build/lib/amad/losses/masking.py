"""Input checks, validity masks and the masked reductions shared by the attention losses.

Shapes: student (B, Hs, Q, K), teacher (B, Ht, Q, K), query_mask (B, Q), key_mask (B, K); masks are bool with
True = valid. An entry (q, k) is valid when both its query and its key are valid; a query row is valid when its
query is valid and the sample has at least one valid key.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from amad.errors import ConfigError

# log(m) is taken as log(m + LOG_EPS): zeros (padded or causally masked keys) never give inf or NaN, and the
# gradient t / (m + LOG_EPS) stays finite. In float32, m + 1e-12 == m for every m above ~1e-5.
LOG_EPS = 1e-12
# Norms below this count as zero (an all-zero map has cosine 0 with every other map).
NORM_EPS = 1e-12
# p·log q is taken as p·log(max(q, TINY)) where q may be 0 only when p is (0·log 0 = 0); 4x faster than xlogy on CPU.
TINY = 1e-30


@dataclass
class Maps:
    """Checked attention maps in a float dtype, invalid entries zeroed, teacher detached.

    student: (B, Hs, Q, K) (left unzeroed when prepare_maps was told ``zero_student=False``); teacher: (B, Ht, Q, K);
    valid: (B, 1, Q, K) bool or None (all valid);
    rows: (B,) number of valid query rows; entries: (B,) number of valid (q, k) entries.
    """

    student: Tensor
    teacher: Tensor
    valid: Tensor | None
    rows: Tensor
    entries: Tensor


def compute_dtype(x: Tensor, name: str, what: str) -> Tensor:
    """Return ``x`` as float32 when it is float16/bfloat16, unchanged when float32/float64."""
    if not x.is_floating_point():
        raise ConfigError(f"{name}: {what} must be a floating-point tensor of probabilities, got {x.dtype}")
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def check_mask(mask: Tensor | None, shape: tuple[int, ...], name: str, what: str, letters: str) -> Tensor | None:
    """Check a bool mask of the given shape; ``letters`` names the dims, e.g. "(B, Q)"."""
    if mask is None:
        return None
    if mask.dtype != torch.bool:
        raise ConfigError(f"{name}: {what} must be a bool tensor (True = valid), got {mask.dtype}; pass mask.bool()")
    if tuple(mask.shape) != shape:
        raise ConfigError(
            f"{name}: {what} must have shape {letters} = {shape}, got {tuple(mask.shape)}; "
            "pass the mask of this layer's positions"
        )
    return mask


REDUCTIONS = ("per_head", "sum")


def check_reduction(reduction: str, name: str) -> str:
    """``per_head`` (the mean over the heads a loss sums over) or ``sum`` (the paper's literal form)."""
    if reduction not in REDUCTIONS:
        raise ConfigError(
            f"{name}: reduction must be 'per_head' (mean over the heads summed over) or 'sum' (the paper's literal "
            f"form), got {reduction!r}"
        )
    return reduction


def reduce_heads(value: Tensor, heads: int, reduction: str) -> Tensor:
    """A loss summed over ``heads`` heads, as the mean over them (``per_head``) or left as the sum (``sum``)."""
    return value / heads if reduction == "per_head" else value


def check_tau(tau: float, name: str) -> float:
    if isinstance(tau, bool) or not isinstance(tau, (int, float)):
        raise ConfigError(f"{name}: tau must be a number > 0, got {tau!r}; use the paper's tau=1.0")
    if not tau > 0:
        raise ConfigError(f"{name}: tau must be > 0, got {tau}; use the paper's tau=1.0 or a smaller positive value")
    return float(tau)


def prepare_maps(
    name: str,
    student: Tensor,
    teacher: Tensor,
    query_mask: Tensor | None,
    key_mask: Tensor | None,
    *,
    zero_student: bool = True,
) -> Maps:
    """Validate shapes and masks, promote half precision to float32, detach the teacher and zero invalid entries.

    ``zero_student=False`` leaves the student as it is, for a loss that masks it inside its own autograd Function
    with ``maps.valid`` (one fewer graph node and no masked backward pass).
    """
    if student.dim() != 4 or teacher.dim() != 4:
        raise ConfigError(
            f"{name}: student and teacher must be 4-D (B, H, Q, K) attention probabilities, got student "
            f"{tuple(student.shape)} and teacher {tuple(teacher.shape)}; pass one layer's maps"
        )
    b, _, q, k = student.shape
    if (teacher.shape[0], teacher.shape[2], teacher.shape[3]) != (b, q, k):
        raise ConfigError(
            f"{name}: student {tuple(student.shape)} and teacher {tuple(teacher.shape)} differ in B, Q or K; "
            "pass maps of the same batch and the same attention kind"
        )
    s = compute_dtype(student, name, "student")
    t = compute_dtype(teacher, name, "teacher").detach()
    if s.dtype != t.dtype:
        t = t.to(s.dtype)
    query_mask = check_mask(query_mask, (b, q), name, "query_mask", "(B, Q)")
    key_mask = check_mask(key_mask, (b, k), name, "key_mask", "(B, K)")
    if query_mask is None and key_mask is None:
        rows = torch.full((b,), float(q), dtype=s.dtype, device=s.device)  # (B,)
        return Maps(s, t, None, rows, rows * k)
    qm = query_mask if query_mask is not None else torch.ones(b, q, dtype=torch.bool, device=s.device)
    km = key_mask if key_mask is not None else torch.ones(b, k, dtype=torch.bool, device=s.device)
    qm, km = qm.to(s.device), km.to(s.device)
    valid = qm[:, None, :, None] & km[:, None, None, :]  # (B, Q), (B, K) -> (B, 1, Q, K)
    zero = s.new_zeros(())
    if zero_student:
        s = torch.where(valid, s, zero)  # padded entries (even NaN) -> 0
    t = torch.where(valid, t, zero)
    n_keys = km.sum(1).to(s.dtype)  # (B, K) -> (B,)
    rows = qm.sum(1).to(s.dtype) * (n_keys > 0)  # (B, Q) -> (B,)
    return Maps(s, t, valid, rows, rows * n_keys)


def batch_mean(per_sample: Tensor, counts: Tensor) -> Tensor:
    """Mean over samples of ``per_sample / counts``; samples with ``counts == 0`` (nothing valid) are left out.

    per_sample, counts: (B,) -> scalar. Returns 0 (still attached to the graph) when no sample has anything valid.
    """
    has = counts > 0  # (B,)
    per = per_sample / counts.clamp_min(1)  # (B,)
    return torch.where(has, per, per.new_zeros(())).sum() / has.sum().clamp_min(1)


def kl_sum(teacher: Tensor, student: Tensor) -> Tensor:
    """Per-sample sum over all but the batch dim of t·(log t − log(s + LOG_EPS)), with 0·log 0 = 0.

    teacher (detached), student: (B, H, ...) same shape -> (B,). Entries where t = 0 contribute nothing.
    """
    neg_entropy = plogq_sum(teacher, teacher)  # (B, H, ...) -> (B,)
    cross = (teacher * (student + LOG_EPS).log()).flatten(1).sum(1)  # (B, H, ...) -> (B,)
    return neg_entropy - cross


def plogq_sum(p: Tensor, q: Tensor) -> Tensor:
    """Per-sample Σ p·log q without gradient, where q = 0 only where p = 0. p, q: (B, ...) -> (B,)."""
    with torch.no_grad():
        return q.clamp_min(TINY).log_().mul_(p).flatten(1).sum(1)


def cosine(t: Tensor, s: Tensor) -> Tensor:
    """Cosine similarity of every teacher row with every student row, batched over leading dims.

    t: (..., Ht, n), s: (..., Hs, n) -> (..., Ht, Hs). An all-zero row has cosine 0 with everything.
    """
    dots = t @ s.transpose(-1, -2)  # (..., Ht, n) @ (..., n, Hs) -> (..., Ht, Hs)
    tn = torch.linalg.vector_norm(t, dim=-1).clamp_min(NORM_EPS)  # (..., Ht, n) -> (..., Ht)
    sn = torch.linalg.vector_norm(s, dim=-1).clamp_min(NORM_EPS)  # (..., Hs, n) -> (..., Hs)
    return dots / (tn[..., :, None] * sn[..., None, :])
