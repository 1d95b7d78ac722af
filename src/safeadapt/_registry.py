"""One generic registry: the single list of choices for protocols, backbones, tasks and metrics."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

from safeadapt.errors import InvalidConfig

T = TypeVar("T")


def did_you_mean(name: object, known: Iterable[str], prefix: str = "") -> str:
    """`` Did you mean 'x'?`` for the closest of ``known`` to ``name`` (``prefix`` + it), or
    ``""``: the one spelling of every "did you mean" in safeadapt's messages."""
    close = difflib.get_close_matches(str(name), sorted(known), n=1)
    return f" Did you mean {prefix + close[0]!r}?" if close else ""


class Registry(Generic[T]):
    """A named collection of objects, filled by ``@registry.register("name")`` in each module.

    ``get`` fails with the list of known names and a "did you mean" suggestion, so CLI choices
    and error messages all come from here.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._order: dict[str, float] = {}

    def register(self, name: str, order: float | None = None) -> Callable[[T], T]:
        """``order``: where the entry stands in :meth:`in_order` (lower first; entries without
        one follow, in registration order) -- so the order never depends on import order."""

        def decorator(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = obj
            self._order[name] = float("inf") if order is None else order
            return obj

        return decorator

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise InvalidConfig(self.unknown_message(name)) from None

    def unknown_message(self, name: str) -> str:
        hint = did_you_mean(name, self._items)
        return f"Unknown {self.kind} {name!r}.{hint} Known: {', '.join(sorted(self._items))}."

    def names(self) -> list[str]:
        return sorted(self._items)

    def in_order(self) -> list[str]:
        """The names by their declared ``order``, then registration order (e.g. the safety
        families' column order)."""
        return sorted(self._items, key=lambda name: self._order[name])  # sorted() is stable

    def __repr__(self) -> str:
        return f"<Registry {self.kind!r} ({len(self._items)}): {', '.join(self.in_order())}>"

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
