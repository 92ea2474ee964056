"""Per-head value-output circuits X_i = V_i W_O^i: what each head adds to the layer output per unit of attention.

A multi-head attention layer outputs Σ_i A_i X_i (+ the output bias), with A_i (Q, K) head i's probabilities and
X_i (K, D) its values pushed through head i's slice of the output projection. Squeezing-Heads Distillation needs
the teacher's X_i for its closed-form merge weight (amad.losses.squeezing_heads); a capture records them when
``CaptureSpec(values=True)``.
"""

from __future__ import annotations

import torch


def value_circuits(values: torch.Tensor, out_weight: torch.Tensor) -> torch.Tensor:
    """values (B, H, K, Dh) per-head values, out_weight (D, H·Dh) the output projection -> X (B, H, K, D).

    Head i's slice of the projection is out_weight[:, i·Dh:(i+1)·Dh] (transformers' head-major layout).
    """
    h, dh = values.shape[1], values.shape[3]  # values (B, H, K, Dh)
    w = out_weight.detach().reshape(out_weight.shape[0], h, dh).permute(1, 2, 0)  # (D, H·Dh) -> (H, Dh, D)
    return torch.einsum("bhkd,hde->bhke", values.detach(), w.to(values.dtype))  # (B, H, K, Dh) @ (H, Dh, D)
