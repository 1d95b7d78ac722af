"""Typed configs: dataclasses built from plain dicts and checked where they enter.

``build_config(LPConfig, {"c_grid": [0.1, 1]}, where="protocol 'lp'")`` rejects unknown keys with a
"did you mean", converts lists to tuples, and runs the dataclass's own ``__post_init__`` checks.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from safeadapt._registry import did_you_mean
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
            hint = did_you_mean(key, fields)
            raise InvalidConfig(
                f"{where}: unknown setting {key!r}.{hint} Known: {', '.join(sorted(fields))}."
            )
    clean = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    clean = _typed(cls, clean, where)
    try:
        return cls(**clean)
    except TypeError as err:
        raise InvalidConfig(f"{where}: {err}") from err


_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def _typed(cls: type, values: dict[str, Any], where: str) -> dict[str, Any]:
    """Check each value against its field's annotation (one place, constraints as data):
    booleans are not numbers, strings are not booleans or numbers. A string that is a plain
    number (YAML 1.1 reads ``1e-5`` as a string) is accepted as that number."""
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # an annotation we cannot resolve: the dataclass checks remain
        return values
    out = dict(values)
    for key, value in values.items():
        if key in hints:
            out[key] = _coerce(hints[key], value, f"{where} {key!r}")
    return out


def _coerce(hint: Any, value: Any, what: str) -> Any:
    origin = typing.get_origin(hint)
    options = typing.get_args(hint) if origin in (typing.Union, types.UnionType) else (hint,)
    if value is None:
        if type(None) in options or hint is Any:
            return value
        raise InvalidConfig(f"{what} may not be null; give {_describe(options)}.")
    simple = [o for o in options if o in (bool, int, float, str)]
    tuples = [o for o in options if typing.get_origin(o) is tuple]
    if not simple and not tuples:
        return value  # mappings, nested configs, Any: checked by their own builders
    if isinstance(value, bool):
        if bool in simple:
            return value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        if isinstance(value, float) and not math.isfinite(value) and (float in simple):
            raise InvalidConfig(f"{what} must be a finite number; got {value!r}.")
        if float in simple or (int in simple and isinstance(value, int)):
            return value
    elif isinstance(value, str):
        if str in simple:
            return value
        if float in simple and _NUMBER.match(value.strip()):
            number = float(value)
            if not math.isfinite(number):
                raise InvalidConfig(f"{what} must be a finite number; got {value!r}.")
            return number
    elif isinstance(value, tuple) and tuples:
        (inner, *_) = typing.get_args(tuples[0]) or (Any,)
        return tuple(_coerce(inner, v, f"{what} entry") for v in value)
    raise InvalidConfig(f"{what} must be {_describe(options)}; got {value!r}.")


def _describe(options: tuple) -> str:
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    words = [names[o] for o in options if o in names]
    words += ["a list" for o in options if typing.get_origin(o) is tuple]
    if type(None) in options:
        words.append("null")
    return " or ".join(dict.fromkeys(words)) or "a valid value"


def require(ok: bool, message: str) -> None:
    """Raise :class:`InvalidConfig` with ``message`` unless ``ok`` (never ``assert`` on input)."""
    if not ok:
        raise InvalidConfig(message)


def positive(name: str, value: float, owner: str) -> None:
    require(
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0,
        f"{owner} '{name}' must be a positive finite number; got {value!r}.",
    )


def at_most(config: Any, limits: Mapping[str, float], owner: str) -> None:
    """Upper bounds on sizes, checked before anything of that size is allocated: each named
    attribute of ``config`` (when set) must be <= its limit."""
    for name, limit in limits.items():
        value = getattr(config, name)
        require(
            value is None
            or isinstance(value, bool)
            or not isinstance(value, int | float)
            or value <= limit,
            f"{owner} '{name}' is {value!r}, above the limit of {limit:g}; {name} must be "
            f"<= {limit:g}.",
        )


def positive_ints(config: Any, names: tuple[str, ...], owner: str) -> None:
    """Each named attribute of ``config`` must be an integer >= 1."""
    for name in names:
        value = getattr(config, name)
        require(
            isinstance(value, int) and not isinstance(value, bool) and value >= 1,
            f"{owner} '{name}' must be an integer >= 1; got {value!r}.",
        )


def non_negative(name: str, value: float, owner: str) -> None:
    require(
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= 0,
        f"{owner} '{name}' must be >= 0; got {value!r}.",
    )


def as_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)
