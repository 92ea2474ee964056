"""A small name -> object registry, and the project's one did-you-mean helper."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

from amad.errors import UnknownNameError

T = TypeVar("T")


def near_matches(name: object, choices: Iterable[str], n: int = 3) -> list[str]:
    """The up to ``n`` choices closest to ``name`` (difflib, cutoff 0.5)."""
    return difflib.get_close_matches(str(name), list(choices), n=n, cutoff=0.5)


def did_you_mean(name: object, choices: Iterable[str]) -> str:
    """`` (did you mean 'a', 'b'?)`` for the near matches of ``name``, or an empty string."""
    near = near_matches(name, choices)
    return f" (did you mean {', '.join(repr(c) for c in near)}?)" if near else ""


def unknown_name(kind: str, name: object, choices: Iterable[str]) -> UnknownNameError:
    """An UnknownNameError whose one-line message gives the near matches and every choice."""
    choices = sorted(choices)
    near = near_matches(name, choices)
    hint = f"did you mean {', '.join(repr(c) for c in near)}? " if near else ""
    return UnknownNameError(f"unknown {kind} {name!r}: {hint}choose one of: {', '.join(choices)}")


class Registry(Generic[T]):
    """Maps names to objects. Duplicate names raise; unknown names list near matches."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            self.add(name, obj)
            return obj

        return deco

    def add(self, name: str, obj: T) -> None:
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._items[name] = obj

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise unknown_name(self.kind, name, self._items) from None

    def unknown_message(self, name: str) -> str:
        return str(unknown_name(self.kind, name, self._items))

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._items))
