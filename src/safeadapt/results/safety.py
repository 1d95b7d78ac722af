"""The base of a safety family's typed result (``safeadapt.safety``).

A family declares its result beside its ``Config``: a frozen dataclass subclassing
:class:`SafetyResult`, whose fields are JSON values, other typed parts (dataclasses with
``from_json``) or dicts / lists / tuples of them. ``to_json()`` is the family's entry in a run's
``record.json`` (a field declared with :func:`absent` is left out while it is ``None``, so a
family that measured nothing writes ``{}``, as before); ``from_json`` reads it back. The
conversion is generic, so a family writes no JSON code.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

from safeadapt.results._json import plain


def absent(default: Any = None) -> Any:
    """A field left out of the JSON while it is ``None`` (a part the family did not measure)."""
    return dataclasses.field(default=default, metadata={"absent_when_none": True})


def _fields_json(value: Any) -> dict[str, Any]:
    """A dataclass's fields as JSON, leaving out the :func:`absent` ones that are ``None``."""
    out = {}
    for f in dataclasses.fields(value):
        item = getattr(value, f.name)
        if item is None and f.metadata.get("absent_when_none"):
            continue
        out[f.name] = dump_value(item)
    return out


def dump_value(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        to_json = getattr(value, "to_json", None)
        return to_json() if to_json else _fields_json(value)
    if isinstance(value, dict):
        return {k: dump_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [dump_value(v) for v in value]
    return plain(value)


def load_value(kind: Any, value: Any) -> Any:
    """``value`` read as ``kind`` (a type hint): typed parts by their ``from_json``, containers
    element by element, anything else as a copy of the JSON value."""
    if value is None:
        return None
    origin = typing.get_origin(kind)
    args = typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return load_value(inner[0], value) if len(inner) == 1 else plain(value)
    if origin is dict and len(args) == 2:
        return {k: load_value(args[1], v) for k, v in value.items()}
    if origin in (list, tuple) and args:
        return origin(load_value(args[0], v) for v in value)
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        if hasattr(kind, "from_json"):
            return kind.from_json(value)
        return _from_fields(kind, value)
    return plain(value)


def _from_fields(cls: type, raw: dict[str, Any]) -> Any:
    hints = typing.get_type_hints(cls)
    values = {}
    for f in dataclasses.fields(cls):
        if f.name in raw:
            values[f.name] = load_value(hints[f.name], raw[f.name])
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise KeyError(f.name)
    return cls(**values)


class SafetyResult:
    """Base of a family's typed result (see the module docstring)."""

    def to_json(self) -> dict[str, Any]:
        return _fields_json(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]):
        """The result of ``raw`` (a family's entry of ``record.json``); ``KeyError`` names a
        required entry that is missing."""
        return _from_fields(cls, raw)
