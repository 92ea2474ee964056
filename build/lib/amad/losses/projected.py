"""AMAD with a learned projection of the student maps (Eq. 11)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from amad.errors import ConfigError
from amad.losses.head_alignment import mixture_kl
from amad.losses.masking import batch_mean, check_tau, prepare_maps

# Rows of the projected maps are divided by max(row sum, ROW_EPS).
ROW_EPS = 1e-12


class AmadProjected(nn.Module):
    """AMAD variant 3 (Eq. 11): S~ = ReLU(S W^T + b) on the flattened student maps, then the KL variant on S~.

    W is (n, n) and b is (n,) with n = Q·K, so the parameters and the activations of the projection grow with
    (Q·K)²: n = 64·64 already needs 16.8M parameters (67 MB in float32); it is not a default loss.
    W starts as the identity and b at zero, so before training the loss equals :func:`amad_kl`.

    The paper leaves open how S~ becomes a distribution per query row; here each row of S~ is masked to the
    valid keys and divided by its sum (floored at 1e-12). Rows that the ReLU zeroes entirely stay zero and the
    1e-12 inside the KL's log keeps the value finite.

    Args:
        n: Q·K, the flattened map size this module accepts.
        tau: alignment temperature (> 0), default 1.0. detach_alignment: stop the gradient through ``a``.
    """

    def __init__(self, n: int, *, tau: float = 1.0, detach_alignment: bool = False) -> None:
        super().__init__()
        if n < 1:
            raise ConfigError(f"AmadProjected: n must be Q*K >= 1, got {n}")
        self.n = int(n)
        self.tau = check_tau(tau, "AmadProjected")
        self.detach_alignment = bool(detach_alignment)
        self.weight = nn.Parameter(torch.eye(self.n))  # (n, n)
        self.bias = nn.Parameter(torch.zeros(self.n))  # (n,)

    def forward(
        self,
        student: Tensor,
        teacher: Tensor,
        *,
        query_mask: Tensor | None = None,
        key_mask: Tensor | None = None,
    ) -> Tensor:
        """Σ_i mean_r KL(t_i[r] || Σ_j a_ij s~_j[r]) with a = alignment(S~, T); mean over samples.

        student: (B, Hs, Q, K), teacher: (B, Ht, Q, K) probabilities with Q·K = n; query_mask (B, Q) and
        key_mask (B, K) bool. Returns a scalar; the reduction is that of :func:`amad_kl`.
        """
        maps = prepare_maps("AmadProjected", student, teacher, query_mask, key_mask)
        b, hs, q, k = maps.student.shape
        if q * k != self.n:
            raise ConfigError(
                f"AmadProjected was built for n={self.n} but got maps with Q={q}, K={k} (Q*K={q * k}); "
                "build it with n=Q*K of the padded maps"
            )
        dtype = torch.promote_types(maps.student.dtype, self.weight.dtype)
        s = maps.student.flatten(2).to(dtype)  # (B, Hs, Q, K) -> (B, Hs, n)
        s = F.relu(F.linear(s, self.weight.to(dtype), self.bias.to(dtype)))  # (B, Hs, n) -> (B, Hs, n)
        s = s.view(b, hs, q, k)  # (B, Hs, n) -> (B, Hs, Q, K)
        if maps.valid is not None:
            s = torch.where(maps.valid, s, s.new_zeros(()))
        s = s / s.sum(-1, keepdim=True).clamp_min(ROW_EPS)  # rows renormalised over valid keys
        t = maps.teacher.to(dtype)
        return batch_mean(mixture_kl(t, s, self.tau, self.detach_alignment), maps.rows.to(dtype))

    def extra_repr(self) -> str:
        return f"n={self.n}, tau={self.tau}, detach_alignment={self.detach_alignment}"
