"""Loss terms of a distillation method, parsed from params, and their weighted combination.

A method is a mapping from term names to either a weight or ``{weight: w, <option>: value, ...}``:

    amad:
      task: 1.0                                   # ground-truth cross-entropy
      logit_kd: {weight: 1.0, temperature: 2.0}   # Hinton logit distillation
      amad_kl: {weight: 1.0, tau: 1.0}            # any attention loss registered in amad.losses

Attention terms are averaged over every captured (kind, student layer, teacher layer) pair; each per-pair value
is already a sum over heads (see the loss docstrings).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from amad import losses
from amad.errors import ConfigError

TASK_TERM = "task"
LOGIT_TERM = "logit_kd"


@dataclass(frozen=True)
class Term:
    name: str
    weight: float
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def is_attention(self) -> bool:
        return self.name not in (TASK_TERM, LOGIT_TERM)


def parse_method(method: str, spec: Any) -> tuple[Term, ...]:
    """Parse one method's term mapping; unknown loss names raise with near matches."""
    if not isinstance(spec, Mapping) or not spec:
        raise ConfigError(f"distill.methods.{method} must map term names to weights, e.g. {{task: 1.0}}")
    terms = []
    for name, value in spec.items():
        if name != TASK_TERM:
            losses.get(name)  # raises UnknownNameError listing near matches
        if isinstance(value, Mapping):
            options = dict(value)
            if "weight" not in options:
                raise ConfigError(f"distill.methods.{method}.{name} needs a weight, e.g. {{weight: 1.0}}")
            weight = options.pop("weight")
        else:
            weight, options = value, {}
        if isinstance(weight, bool) or not isinstance(weight, (int, float)):
            raise ConfigError(f"distill.methods.{method}.{name}: weight must be a number, got {weight!r}")
        if name == TASK_TERM and options:
            raise ConfigError(f"distill.methods.{method}.task takes only a weight, got options {sorted(options)}")
        terms.append(Term(str(name), float(weight), options))
    return tuple(terms)


def needs_teacher(terms: tuple[Term, ...]) -> bool:
    return any(t.name != TASK_TERM and t.weight != 0 for t in terms)


def attention_terms(terms: tuple[Term, ...]) -> tuple[Term, ...]:
    return tuple(t for t in terms if t.is_attention and t.weight != 0)


def combine(parts: Mapping[str, torch.Tensor], terms: tuple[Term, ...]) -> torch.Tensor:
    """Weighted sum of the named, unweighted parts."""
    total = None
    for term in terms:
        value = term.weight * parts[term.name]
        total = value if total is None else total + value
    if total is None:
        raise ConfigError("a method needs at least one loss term")
    return total
