"""The loss registry: every loss is registered by name with its contract.

Each registered function carries:
- ``version`` (int): bump it whenever the maths changes; it is written into run_info.json and the eval records.
- ``kind``: ``"attention"`` (takes student (B, Hs, Q, K) and teacher (B, Ht, Q, K) maps plus bool masks) or
  ``"logit"`` (takes student and teacher logits (B, T, V) plus a token mask).
- ``heads`` (attention losses): whose heads the per-sample value sums over, ``"teacher"`` or ``"student"``;
  ``reduction="per_head"`` divides by that count.
- ``options``: the keyword options a method may set in params (validated before any model is built).
- ``takes_values`` (attention losses): it accepts ``teacher_values`` (B, Ht, K, D), the teacher's per-head
  value-output circuits; the training step then captures them (``CaptureSpec(values=True)``) and passes them.

Every loss returns a scalar. The training step dispatches on ``kind``, never on a loss's name.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from amad.registry import Registry

F = TypeVar("F", bound=Callable[..., Any])

LOSSES: Registry[Callable[..., Any]] = Registry("loss")
KINDS = ("attention", "logit")
# Arguments the training step passes itself; a method's params may not set them.
TENSOR_ARGS = (
    "student",
    "teacher",
    "query_mask",
    "key_mask",
    "student_logits",
    "teacher_logits",
    "mask",
    "teacher_values",
)


def register(name: str, *, version: int, kind: str, heads: str | None = None) -> Callable[[F], F]:
    """Register ``fn`` under ``name`` and stamp its contract (see the module docstring)."""
    if kind not in KINDS:
        raise ValueError(f"loss kind must be one of {KINDS}, got {kind!r}")
    if (kind == "attention") != (heads in ("teacher", "student")):
        raise ValueError(f"attention losses say whose heads they sum over (teacher or student), got {heads!r}")

    def deco(fn: F) -> F:
        params = inspect.signature(fn).parameters.values()
        fn.version = version  # type: ignore[attr-defined]
        fn.kind = kind  # type: ignore[attr-defined]
        fn.heads = heads  # type: ignore[attr-defined]
        fn.takes_values = "teacher_values" in inspect.signature(fn).parameters  # type: ignore[attr-defined]
        fn.options = tuple(p.name for p in params if p.kind is p.KEYWORD_ONLY and p.name not in TENSOR_ARGS)  # type: ignore[attr-defined]
        LOSSES.add(name, fn)
        return fn

    return deco
