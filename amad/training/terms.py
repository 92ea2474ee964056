"""Loss terms of a distillation method, parsed and checked from params before any model is built.

A method maps term names to either a weight or ``{weight: w, <option>: value, ...}``:

    amad:
      task: 1.0                                   # ground-truth cross-entropy
      logit_kd: {weight: 1.0, temperature: 2.0}   # Hinton logit distillation
      amad_kl: {weight: auto, ratio: 1.0, tau: 1.0, reduction: per_head}   # any registered attention loss

``weight: auto`` (attention terms only) sets the weight at the start of training so that the term's parameter
gradient is ``ratio`` times the task term's on the first batch (amad.training.balance); the same rule for every
method, so methods are compared at matched strength. Attention terms are averaged over every captured
(kind, student layer, teacher layer) pair. Options are checked against the loss's signature (with near matches)
and their values against the loss's rules, so a typo fails at start-up, not at step 1.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from amad import losses
from amad.errors import ConfigError
from amad.losses.masking import check_reduction, check_tau
from amad.registry import did_you_mean

TASK_TERM = "task"
LOGIT_TERM = "logit_kd"
AUTO = "auto"
TEACHER_HEADS = ("first", "strided", "auto")  # named pairings for one-to-one losses (amad.training.step)


@dataclass(frozen=True)
class Term:
    """One weighted loss term. ``auto``: the weight is calibrated at the start of training (``weight`` is then
    the calibrated value, 1.0 until calibration); ``ratio``: the target gradient-norm ratio for ``auto``."""

    name: str
    weight: float
    options: dict[str, Any] = field(default_factory=dict)
    auto: bool = False
    ratio: float = 1.0

    @property
    def kind(self) -> str:
        """ "task", or the registered loss's kind ("attention" or "logit")."""
        return TASK_TERM if self.name == TASK_TERM else losses.get(self.name).kind

    @property
    def is_attention(self) -> bool:
        return self.kind == "attention"

    def with_weight(self, weight: float) -> Term:
        return dataclasses.replace(self, weight=float(weight))


def _number(value: Any, where: str) -> float:
    """A finite number; also a numeric string such as YAML 1.1's unquoted ``1e-3``."""
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = float(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{where} must be a finite number, got {value!r}")
    return float(value)


def _check_options(method: str, name: str, options: dict[str, Any]) -> dict[str, Any]:
    """Check option names against the loss's signature and the values of the options we know the rules of."""
    fn = losses.get(name)
    where = f"distill.methods.{method}.{name}"
    for key in options:
        if key not in fn.options:
            raise ConfigError(
                f"unknown option {where}.{key}{did_you_mean(key, fn.options)}: {name} takes "
                f"{', '.join(fn.options) or 'no options'}"
            )
    out = dict(options)
    if "tau" in out:
        out["tau"] = check_tau(_number(out["tau"], f"{where}.tau"), where)
    if "temperature" in out:
        out["temperature"] = _number(out["temperature"], f"{where}.temperature")
        if out["temperature"] <= 0:
            raise ConfigError(f"{where}.temperature must be > 0, got {out['temperature']}; Hinton's default is 1-4")
    if "reduction" in out:
        check_reduction(out["reduction"], where)
    if "detach_alignment" in out and not isinstance(out["detach_alignment"], bool):
        raise ConfigError(f"{where}.detach_alignment must be true or false, got {out['detach_alignment']!r}")
    heads = out.get("teacher_heads")
    named = heads is None or (isinstance(heads, str) and heads in TEACHER_HEADS)
    listed = isinstance(heads, (list, tuple)) and all(isinstance(i, int) and i >= 0 for i in heads)
    if not (named or listed):
        raise ConfigError(
            f"{where}.teacher_heads must be {', '.join(TEACHER_HEADS)} or a list of teacher head indices, got {heads!r}"
        )
    return out


def parse_method(method: str, spec: Any) -> tuple[Term, ...]:
    """Parse and check one method's term mapping; unknown loss names and options raise with near matches."""
    if not isinstance(spec, Mapping) or not spec:
        raise ConfigError(f"distill.methods.{method} must map term names to weights, e.g. {{task: 1.0}}")
    terms = []
    for name, value in spec.items():
        name = str(name)
        if name != TASK_TERM:
            losses.get(name)  # raises UnknownNameError listing near matches
        options = dict(value) if isinstance(value, Mapping) else {"weight": value}
        if "weight" not in options:
            raise ConfigError(f"distill.methods.{method}.{name} needs a weight, e.g. {{weight: 1.0}}")
        weight = options.pop("weight")
        auto = weight == AUTO
        ratio = options.pop("ratio", None)
        where = f"distill.methods.{method}.{name}"
        if auto and (name == TASK_TERM or losses.get(name).kind != "attention"):
            raise ConfigError(f"{where}: weight 'auto' balances attention terms only; give a number")
        weight = 1.0 if auto else _number(weight, f"{where}: weight")
        if ratio is not None and not auto:
            raise ConfigError(f"{where}.ratio only applies with weight: auto; remove it or set weight: auto")
        ratio = 1.0 if ratio is None else _number(ratio, f"{where}.ratio")
        if ratio <= 0:
            raise ConfigError(f"{where}.ratio must be > 0, got {ratio}")
        if name == TASK_TERM and options:
            raise ConfigError(f"distill.methods.{method}.task takes only a weight, got options {sorted(options)}")
        if name != TASK_TERM:
            options = _check_options(method, name, options)
        terms.append(Term(name, weight, options, auto=auto, ratio=ratio))
    return tuple(terms)


def needs_teacher(terms: tuple[Term, ...]) -> bool:
    return any(t.name != TASK_TERM and (t.auto or t.weight != 0) for t in terms)


def attention_terms(terms: tuple[Term, ...]) -> tuple[Term, ...]:
    return tuple(t for t in terms if t.is_attention and (t.auto or t.weight != 0))


def describe(terms: tuple[Term, ...]) -> list[dict[str, Any]]:
    """The terms as JSON-ready dicts (run_info.json): name, weight (calibrated when auto), auto, ratio, options."""
    return [dataclasses.asdict(t) for t in terms]
