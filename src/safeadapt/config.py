"""Typed configs: dataclasses built from plain dicts and checked where they enter.

``build_config(LPConfig, {"c_grid": [0.1, 1]}, where="protocol 'lp'")`` rejects unknown keys with a
"did you mean", converts lists to tuples, and runs the dataclass's own ``__post_init__`` checks.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping
from typing import Any, TypeVar

from safeadapt.errors import InvalidConfig

C = TypeVar("C")


def build_config(cls: type[C], values: Mapping[str, Any] | C | None, where: str) -> C:
    """An instance of the dataclass ``cls`` from ``values`` (a mapping, an instance, or None)."""
    if values is None:
        return cls()
    if isinstance(values, cls):
        return values
    if not isinstance(values, Mapping):
        raise InvalidConfig(
            f"{where}: expected a mapping of settings, got {type(values).__name__}."
        )
    fields = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    for key in values:
        if key not in fields:
            close = difflib.get_close_matches(key, sorted(fields), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise InvalidConfig(
                f"{where}: unknown setting {key!r}.{hint} Known: {', '.join(sorted(fields))}."
            )
    clean = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    try:
        return cls(**clean)
    except TypeError as err:
        raise InvalidConfig(f"{where}: {err}") from err


def require(ok: bool, message: str) -> None:
    """Raise :class:`InvalidConfig` with ``message`` unless ``ok`` (never ``assert`` on input)."""
    if not ok:
        raise InvalidConfig(message)


def positive(name: str, value: float, owner: str) -> None:
    require(
        isinstance(value, int | float) and value > 0,
        f"{owner} '{name}' must be a positive number; got {value!r}.",
    )


def positive_ints(config: Any, names: tuple[str, ...], owner: str) -> None:
    """Each named attribute of ``config`` must be an integer >= 1."""
    for name in names:
        value = getattr(config, name)
        require(
            isinstance(value, int) and value >= 1,
            f"{owner} '{name}' must be an integer >= 1; got {value!r}.",
        )


def non_negative(name: str, value: float, owner: str) -> None:
    require(
        isinstance(value, int | float) and value >= 0,
        f"{owner} '{name}' must be >= 0; got {value!r}.",
    )


def as_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)
