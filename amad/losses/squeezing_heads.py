"""Squeezing-Heads Distillation (SHD; Bing, Li & Liang 2025, arXiv 2502.07436): squeeze Ht teacher heads to Hs.

Method (equation numbers of the ICLR 2025 submission, as cited in the authors' public rebuttal and the reviews;
the arXiv v1 numbering may differ, and the text of its Section 4 could not be read when this was written):

- Eqs. 3–4: a head's contribution to the layer output is A_i X_i, with A_i (Q, K) its attention map and
  X_i = V_i W_O^i (K, D) its value-output circuit, so a layer outputs Σ_i A_i X_i.
- Eqs. 5–6: two adjacent teacher heads p, q are merged into one map, the convex combination
  Ã = α A_p + (1 − α) A_q, which keeps Ã non-negative with rows summing to 1 when 0 ≤ α ≤ 1.
- Eqs. 9–10: α is chosen in closed form from (A_p, A_q, X_p, X_q) so that the merged head keeps the pair's
  output; fitting an unrestricted (Q, K) map exactly would cost O(Q³K³). The objective below is reconstructed
  from those facts (not copied from the paper): the least-squares fit of the pair's output by the merged map
  acting on the merged circuit X_p + X_q (merged heads add their circuits), restricted to the segment A_p..A_q:
      J(α) = || A_p X_p + A_q X_q − (α A_p + (1 − α) A_q)(X_p + X_q) ||²_F = || Δ X_p − α Δ S ||²_F,
      α* = ⟨Δ X_p, Δ S⟩_F / ||Δ S||²_F,   where Δ = A_p − A_q and S = X_p + X_q,
  computed per sample over its valid (query, key) entries (the maps are zero elsewhere).
- Algorithm 1 (rebuttal): merge rounds. Each round merges pairs (0, 1), (2, 3), ... of the current heads; an odd
  last head is kept as it is; merged heads (Ã, X_p + X_q) take part in the next round; repeat down to Hs heads.
- The loss is a KL divergence between the temperature-softened squeezed teacher maps and the student maps,
  summed over the Hs heads; taken here as KL(teacher || student) per query row, the usual distillation direction.

What the paper leaves open, and the choice made here (each a keyword option):

- ``teacher_values``: α needs each teacher head's X_i, which a capture of probabilities alone does not give.
  The training step captures them (``CaptureSpec(values=True)``, amad.capture.circuits) and passes them; version 2
  of this loss is the first trained that way (version 1 runs had α = 1/2, the same loss as head_mean_kl).
  Without them α = 1/2: when X_p and X_q are unknown and exchangeable, swapping them maps J(α) to J(1 − α), so the
  expected J is symmetric about 1/2 and, being a convex quadratic, is smallest there. Pass (B, Ht, K, D) to
  use the closed form. Raw per-head values V_i instead of V_i W_O^i give the same formula, ignoring W_O.
  When ||Δ S|| = 0 every α is optimal (or the maps are equal) and α = 1/2 is used.
- ``clamp_alpha`` (default True): α* is clipped to [0, 1], the minimiser of J over the convex segment, so the
  merged rows stay distributions; False keeps the unconstrained α* (the map can then have negative entries and
  the KL is no longer a divergence: for studying the weights, not for training).
- ``partial_round`` (Ht/Hs not a power of two): Algorithm 1 read literally halves every round and overshoots
  (25 -> 13 -> 7 when 12 heads were asked for). Here a round that would leave fewer than Hs heads merges only
  H − Hs pairs: the leading ones (``"leading"``, as Algorithm 1 keeps the trailing odd head) or the trailing ones
  (``"trailing"``). Hs = Ht merges nothing, so the loss is then one-to-one KL with head i teaching head i.
- ``temperature`` T (default 1.0) softens both squeezed teacher and student rows: p^(1/T) renormalised over the
  valid keys, which equals softmax(logits / T) because the inputs are probabilities; masked keys stay 0. α is
  taken from the unsoftened maps (the objective is about the teacher's actual outputs).
- ``t2_scale`` (default True): the KL is multiplied by T², Hinton's convention for keeping gradient sizes
  comparable across T (no effect at T = 1).
- Reduction: per sample, the sum over the Hs squeezed heads of the mean over valid query rows of the KL summed
  over valid keys; then the mean over samples. ``reduction="per_head"`` (default) divides by Hs, ``"sum"`` keeps
  the paper's sum.
"""

from __future__ import annotations

import torch
from torch import Tensor

from amad.errors import ConfigError
from amad.losses.masking import (
    TINY,
    batch_mean,
    check_reduction,
    compute_dtype,
    kl_sum,
    prepare_maps,
    reduce_heads,
)
from amad.losses.registry import register

NAME = "squeezing_heads_kl"
PARTIAL_ROUNDS = ("leading", "trailing")


def merge_weight(a_p: Tensor, a_q: Tensor, x_p: Tensor | None, x_q: Tensor | None, clamp: bool) -> Tensor:
    """Closed-form α (Eqs. 9–10) for merging map pairs; 1/2 without circuits or when ||Δ S|| = 0.

    a_p, a_q: (..., Q, K) with invalid entries zeroed; x_p, x_q: (..., K, D) or None -> (...,).
    """
    if x_p is None or x_q is None:
        return a_p.new_full(a_p.shape[:-2], 0.5)  # (..., Q, K) -> (...,)
    delta = a_p - a_q  # (..., Q, K)
    dx = delta @ x_p  # (..., Q, K) @ (..., K, D) -> (..., Q, D)
    ds = delta @ (x_p + x_q)  # (..., Q, K) @ (..., K, D) -> (..., Q, D)
    num = (dx * ds).sum((-2, -1))  # (..., Q, D) -> (...,)
    den = ds.square().sum((-2, -1))  # (..., Q, D) -> (...,)
    alpha = torch.where(den > 0, num / den.clamp_min(TINY), torch.full_like(num, 0.5))  # (...,)
    return alpha.clamp(0.0, 1.0) if clamp else alpha


def merge_pairs(a: Tensor, x: Tensor | None, start: int, pairs: int, clamp: bool) -> tuple[Tensor, Tensor | None]:
    """Merge heads (start, start+1), (start+2, start+3), ... in place of the pairs; other heads stay in order.

    a: (B, H, Q, K), x: (B, H, K, D) or None -> (B, H − pairs, Q, K), (B, H − pairs, K, D) or None.
    """
    b, _, q, k = a.shape
    stop = start + 2 * pairs
    pa = a[:, start:stop].reshape(b, pairs, 2, q, k)  # (B, 2P, Q, K) -> (B, P, 2, Q, K)
    px = None if x is None else x[:, start:stop].reshape(b, pairs, 2, *x.shape[2:])  # -> (B, P, 2, K, D)
    x_p, x_q = (None, None) if px is None else (px[:, :, 0], px[:, :, 1])  # (B, P, K, D) each
    alpha = merge_weight(pa[:, :, 0], pa[:, :, 1], x_p, x_q, clamp)[..., None, None]  # (B, P) -> (B, P, 1, 1)
    merged = alpha * pa[:, :, 0] + (1 - alpha) * pa[:, :, 1]  # (B, P, Q, K)
    a = torch.cat([a[:, :start], merged, a[:, stop:]], dim=1)  # -> (B, H − P, Q, K)
    if x is not None:
        x = torch.cat([x[:, :start], x_p + x_q, x[:, stop:]], dim=1)  # -> (B, H − P, K, D)
    return a, x


def squeeze_heads(
    teacher: Tensor,
    heads: int,
    *,
    teacher_values: Tensor | None = None,
    clamp_alpha: bool = True,
    partial_round: str = "leading",
) -> Tensor:
    """Algorithm 1: merge adjacent heads round by round until ``heads`` remain.

    teacher: (B, Ht, Q, K) maps with invalid entries zeroed; teacher_values: (B, Ht, K, D) or None
    -> (B, heads, Q, K). Each round merges ⌊H/2⌋ pairs, or only H − heads pairs when that would overshoot.
    """
    a, x = teacher, teacher_values
    while a.shape[1] > heads:
        h = a.shape[1]
        pairs = min(h // 2, h - heads)
        start = 0 if pairs == h // 2 or partial_round == "leading" else h - 2 * pairs
        a, x = merge_pairs(a, x, start, pairs, clamp_alpha)
    return a


def soften(p: Tensor, temperature: float, valid: Tensor | None) -> Tensor:
    """Rows p^(1/T) renormalised over valid keys (= softmax(logits / T)); invalid entries 0.

    p: (B, H, Q, K), valid: (B, 1, Q, K) bool or None -> (B, H, Q, K).
    """
    if temperature == 1.0:
        return p
    z = p.clamp_min(TINY).log() / temperature  # (B, H, Q, K)
    if valid is None:
        return torch.softmax(z, dim=-1)
    z = z.masked_fill(~valid, torch.finfo(z.dtype).min)  # (B, H, Q, K); finite, so no NaN even in empty rows
    return torch.where(valid, torch.softmax(z, dim=-1), z.new_zeros(()))  # invalid entries -> 0


def check_values(values: Tensor | None, teacher: Tensor, key_mask: Tensor | None) -> Tensor | None:
    """Validate teacher_values (B, Ht, K, D) and zero its padded keys; detached, in the maps' dtype."""
    if values is None:
        return None
    b, ht, _, k = teacher.shape
    if not isinstance(values, Tensor):
        raise ConfigError(f"{NAME}: teacher_values is a capture tensor, not a params value; remove it from params")
    if values.dim() != 4 or tuple(values.shape[:3]) != (b, ht, k):
        raise ConfigError(
            f"{NAME}: teacher_values must be (B, Ht, K, D) = ({b}, {ht}, {k}, D), got {tuple(values.shape)}; "
            "pass each teacher head's V_i W_O^i for this layer's keys"
        )
    x = compute_dtype(values, NAME, "teacher_values").detach().to(device=teacher.device, dtype=teacher.dtype)
    if key_mask is not None:
        x = torch.where(key_mask.to(x.device)[:, None, :, None], x, x.new_zeros(()))  # padded keys (even NaN) -> 0
    return x


@register(NAME, version=2, kind="attention", heads="student")
def squeezing_heads_kl(
    student: Tensor,
    teacher: Tensor,
    *,
    query_mask: Tensor | None = None,
    key_mask: Tensor | None = None,
    teacher_values: Tensor | None = None,
    temperature: float = 1.0,
    t2_scale: bool = True,
    clamp_alpha: bool = True,
    partial_round: str = "leading",
    reduction: str = "per_head",
) -> Tensor:
    """SHD: L = T² Σ_i mean_r KL(soft_T(t̃_i)[r] || soft_T(s_i)[r]), t̃ = the teacher squeezed to Hs heads.

    See the module docstring for the merge (Algorithm 1, Eqs. 6, 9–10) and every choice made where the paper is
    open.

    Args:
        student: (B, Hs, Q, K) probabilities. teacher: (B, Ht, Q, K) probabilities, Ht >= Hs (no gradient).
        query_mask: (B, Q) bool. key_mask: (B, K) bool. True = valid.
        teacher_values: (B, Ht, K, D) per-head value-output circuits X_i for the closed-form α; None -> α = 1/2.
        temperature: T > 0 applied to both squeezed teacher and student rows. t2_scale: multiply the KL by T².
        clamp_alpha: clip α to [0, 1]. partial_round: "leading" or "trailing" pairs when a round must stop early.
        reduction: "per_head" divides the sum over the Hs squeezed heads by Hs; "sum" keeps the sum.

    Returns:
        Scalar: per sample, the sum over squeezed heads of the mean over valid query rows of the KL summed over
        valid keys (reduced as ``reduction`` says); then the mean over samples.
    """
    reduction = check_reduction(reduction, NAME)
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not temperature > 0:
        raise ConfigError(f"{NAME}: temperature must be a number > 0, got {temperature!r}; use 1.0 for no softening")
    if partial_round not in PARTIAL_ROUNDS:
        raise ConfigError(f"{NAME}: partial_round must be 'leading' or 'trailing', got {partial_round!r}")
    maps = prepare_maps(NAME, student, teacher, query_mask, key_mask)
    hs, ht = maps.student.shape[1], maps.teacher.shape[1]
    if not 1 <= hs <= ht:
        raise ConfigError(
            f"{NAME}: SHD squeezes teacher heads into fewer student heads and needs 1 <= Hs <= Ht, got Hs={hs} "
            f"and Ht={ht}; use amad_kl for a student with more heads than its teacher"
        )
    values = check_values(teacher_values, maps.teacher, key_mask)
    t = squeeze_heads(
        maps.teacher, hs, teacher_values=values, clamp_alpha=clamp_alpha, partial_round=partial_round
    )  # (B, Ht, Q, K) -> (B, Hs, Q, K)
    temperature = float(temperature)
    per_sample = kl_sum(soften(t, temperature, maps.valid), soften(maps.student, temperature, maps.valid))  # (B,)
    if t2_scale:
        per_sample = per_sample * temperature**2
    return reduce_heads(batch_mean(per_sample, maps.rows), hs, reduction)
