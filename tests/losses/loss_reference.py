"""Slow, loop-by-loop float64 reference implementations of the losses, written straight from the equations.

Each takes one sample's maps with padding already removed: t (Ht, Q, K), s (Hs, Q, K) as nested loops over
plain Python floats where it matters, so they share no code with amad.losses.
"""

from __future__ import annotations

import math

import torch


def _cos(x: list[float], y: list[float]) -> float:
    nx = math.sqrt(sum(v * v for v in x))
    ny = math.sqrt(sum(v * v for v in y))
    if nx == 0 or ny == 0:
        return 0.0
    return sum(a * b for a, b in zip(x, y)) / (nx * ny)


def _softmax(xs: list[float]) -> list[float]:
    top = max(xs)
    e = [math.exp(x - top) for x in xs]
    return [v / sum(e) for v in e]


def _kl(p: list[float], q: list[float]) -> float:
    return sum(pi * math.log(pi / qi) for pi, qi in zip(p, q) if pi > 0)


def _flat(m: torch.Tensor) -> list[float]:
    return [float(v) for v in m.reshape(-1)]


def alignment_one(t: torch.Tensor, s: torch.Tensor, tau: float) -> list[list[float]]:
    """(Ht, Hs) nested list: a_ij = softmax_j(cos(t_i, s_j) / tau)."""
    return [_softmax([_cos(_flat(t[i]), _flat(s[j])) / tau for j in range(s.shape[0])]) for i in range(t.shape[0])]


def amad_kl_one(t: torch.Tensor, s: torch.Tensor, tau: float) -> float:
    a = alignment_one(t, s, tau)
    total = 0.0
    for i in range(t.shape[0]):
        row_kls = []
        for r in range(t.shape[1]):
            mix = [sum(a[i][j] * float(s[j, r, k]) for j in range(s.shape[0])) for k in range(t.shape[2])]
            row_kls.append(_kl(_flat(t[i, r]), mix))
        total += sum(row_kls) / len(row_kls)
    return total


def amad_l2_one(t: torch.Tensor, s: torch.Tensor, tau: float) -> float:
    a = alignment_one(t, s, tau)
    sh = []
    for j in range(s.shape[0]):
        v = _flat(s[j])
        n = math.sqrt(sum(x * x for x in v))
        sh.append([x / n for x in v])
    total = 0.0
    for i in range(t.shape[0]):
        v = _flat(t[i])
        n = math.sqrt(sum(x * x for x in v))
        th = [x / n for x in v]
        for e in range(len(th)):
            mix = sum(a[i][j] * sh[j][e] for j in range(len(sh)))
            total += (th[e] - mix) ** 2
    return total


def amad_token_kl_one(t: torch.Tensor, s: torch.Tensor, tau: float) -> float:
    total = 0.0
    for i in range(t.shape[0]):
        row_kls = []
        for r in range(t.shape[1]):
            a = _softmax([_cos(_flat(t[i, r]), _flat(s[j, r])) / tau for j in range(s.shape[0])])
            mix = [sum(a[j] * float(s[j, r, k]) for j in range(s.shape[0])) for k in range(t.shape[2])]
            row_kls.append(_kl(_flat(t[i, r]), mix))
        total += sum(row_kls) / len(row_kls)
    return total


def one_to_one_kl_one(t: torch.Tensor, s: torch.Tensor, heads: list[int]) -> float:
    total = 0.0
    for i, h in enumerate(heads):
        total += sum(_kl(_flat(t[h, r]), _flat(s[i, r])) for r in range(t.shape[1])) / t.shape[1]
    return total


def one_to_one_mse_one(t: torch.Tensor, s: torch.Tensor, heads: list[int]) -> float:
    total = 0.0
    for i, h in enumerate(heads):
        diffs = [(a - b) ** 2 for a, b in zip(_flat(t[h]), _flat(s[i]))]
        total += sum(diffs) / len(diffs)
    return total


def head_mean_kl_one(t: torch.Tensor, s: torch.Tensor) -> float:
    g = t.shape[0] // s.shape[0]
    means = torch.stack([sum(t[i * g + m] for m in range(g)) / g for i in range(s.shape[0])])
    return one_to_one_kl_one(means, s, list(range(s.shape[0])))


def logit_kd_ref(zs: torch.Tensor, zt: torch.Tensor, mask: torch.Tensor, temperature: float) -> float:
    kls = []
    for b in range(zs.shape[0]):
        for i in range(zs.shape[1]):
            if mask[b, i]:
                p = _softmax([float(v) / temperature for v in zt[b, i]])
                q = _softmax([float(v) / temperature for v in zs[b, i]])
                kls.append(_kl(p, q))
    return temperature**2 * sum(kls) / len(kls)
