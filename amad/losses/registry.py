"""The loss registry: every loss is registered by name and carries a ``version`` int."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from amad.registry import Registry

F = TypeVar("F", bound=Callable[..., Any])

LOSSES: Registry[Callable[..., Any]] = Registry("loss")


def register(name: str, *, version: int = 1) -> Callable[[F], F]:
    """Register ``obj`` under ``name`` and stamp ``obj.version`` (bump it whenever the maths changes)."""

    def deco(obj: F) -> F:
        obj.version = version  # type: ignore[attr-defined]
        LOSSES.add(name, obj)
        return obj

    return deco
