"""Distillation losses: pure functions on tensors, registered by name in ``LOSSES`` with their contract.

Attention losses take ``(student (B, Hs, Q, K), teacher (B, Ht, Q, K), *, query_mask=None (B, Q),
key_mask=None (B, K), reduction="per_head", **options)`` with post-softmax maps and bool masks (True = valid),
and return a scalar: the mean over the batch of a per-sample value. Every registered loss carries ``version``,
``kind`` ("attention" or "logit"), ``heads`` and ``options`` (see :mod:`amad.losses.registry`).
``alignment`` (Eq. 2's weights) and ``AmadProjected`` (Eq. 11, a module with parameters) are exported helpers,
not registered losses: a method cannot name them as terms.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from amad.losses.head_alignment import alignment, amad_kl, amad_l2, amad_token_kl
from amad.losses.logits import logit_kd
from amad.losses.one_to_one import head_mean_kl, one_to_one_kl, one_to_one_mse
from amad.losses.projected import AmadProjected
from amad.losses.registry import LOSSES
from amad.losses.squeezing_heads import squeezing_heads_kl

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
    "squeezing_heads_kl",
]


def get(name: str) -> Callable[..., Any]:
    """The loss registered under ``name``.

    Raises amad.errors.UnknownNameError listing near matches when the name is unknown.
    """
    return LOSSES.get(name)
