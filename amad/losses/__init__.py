"""Distillation losses: pure functions on tensors, registered by name in ``LOSSES``.

Attention losses take ``(student (B, Hs, Q, K), teacher (B, Ht, Q, K), *, query_mask=None (B, Q),
key_mask=None (B, K), **options)`` with post-softmax maps and bool masks (True = valid), and return a scalar:
the mean over the batch of a per-sample value. Every registered loss has a ``version`` int.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from amad.losses.head_alignment import alignment, amad_kl, amad_l2, amad_token_kl
from amad.losses.logits import logit_kd
from amad.losses.one_to_one import head_mean_kl, one_to_one_kl, one_to_one_mse
from amad.losses.projected import AmadProjected
from amad.losses.registry import LOSSES

__all__ = [
    "LOSSES",
    "AmadProjected",
    "alignment",
    "amad_kl",
    "amad_l2",
    "amad_token_kl",
    "get",
    "head_mean_kl",
    "logit_kd",
    "one_to_one_kl",
    "one_to_one_mse",
]


def get(name: str) -> Callable[..., Any]:
    """The loss registered under ``name`` (``AmadProjected`` is a class: instantiate it with n = Q·K).

    Raises amad.errors.UnknownNameError listing near matches when the name is unknown.
    """
    return LOSSES.get(name)
