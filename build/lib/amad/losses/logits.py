"""Logit distillation (Hinton et al., 2015)."""

from __future__ import annotations

import torch
from torch import Tensor

from amad.errors import ConfigError
from amad.losses.masking import check_mask, compute_dtype
from amad.losses.registry import register


@register("logit_kd", version=1, kind="logit")
def logit_kd(
    student_logits: Tensor,
    teacher_logits: Tensor,
    *,
    mask: Tensor | None = None,
    temperature: float = 1.0,
) -> Tensor:
    """Hinton KD: L = τ² · mean over valid tokens of KL(softmax(z_t / τ) || softmax(z_s / τ)).

    Args:
        student_logits, teacher_logits: (B, T, V) pre-softmax scores over the same vocabulary; no gradient flows
            to the teacher. Half precision is computed in float32.
        mask: (B, T) bool, True = a real target token; None = every token.
        temperature: τ > 0.

    Returns:
        Scalar: the KL summed over the vocabulary, averaged over all valid tokens of the batch (not per sample),
        times τ². 0 when no token is valid. Teacher logits of -inf (probability 0) are allowed.
    """
    name = "logit_kd"
    if student_logits.dim() != 3 or student_logits.shape != teacher_logits.shape:
        raise ConfigError(
            f"{name}: student_logits {tuple(student_logits.shape)} and teacher_logits "
            f"{tuple(teacher_logits.shape)} must both be (B, T, V) with the same shape; "
            "slice both to the shared vocabulary and target length"
        )
    if not temperature > 0:
        raise ConfigError(f"{name}: temperature must be > 0, got {temperature}")
    zs = compute_dtype(student_logits, name, "student_logits")
    zt = compute_dtype(teacher_logits, name, "teacher_logits").detach().to(zs.dtype)
    mask = check_mask(mask, tuple(zs.shape[:2]), name, "mask", "(B, T)")
    log_ps = torch.log_softmax(zs / temperature, dim=-1)  # (B, T, V)
    pt = torch.softmax(zt / temperature, dim=-1)  # (B, T, V)
    kl = (torch.special.xlogy(pt, pt) - pt * log_ps).sum(-1)  # (B, T, V) -> (B, T)
    if mask is None:
        return kl.mean() * temperature**2
    mask = mask.to(kl.device)
    total = torch.where(mask, kl, kl.new_zeros(())).sum()  # (B, T) -> ()
    return total / mask.sum().clamp_min(1) * temperature**2
