"""Helpers of the results' JSON readers and writers."""

from __future__ import annotations

import copy
import dataclasses
import types
import typing
from typing import Any

SCHEMA = 1  # the layout of record.json and summary.json; files without it are version 0


def plain(value: Any) -> Any:
    """A deep copy, so a frozen result never shares a mutable part with its caller."""
    return copy.deepcopy(value)


def check_schema(raw: Any, what: str) -> None:
    """Refuse a file written by a newer safeadapt (its layout may differ)."""
    version = raw.get("schema", 0)
    if not isinstance(version, int) or version > SCHEMA:
        raise ValueError(
            f"{what} schema {version!r} is newer than this safeadapt's ({SCHEMA}): "
            "upgrade safeadapt to read it"
        )


class FlatJson:
    """``to_json`` / ``from_json`` for a dataclass whose fields are plain JSON values."""

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_json(cls, raw: Any):
        return cls(**{f.name: raw[f.name] for f in dataclasses.fields(cls)})  # type: ignore[arg-type]


# --- the generic converter of typed parts (a safety family's result, a verdict's parts) ---


def absent(default: Any = None) -> Any:
    """A field left out of the JSON while it is ``None`` (a part the family did not measure)."""
    return dataclasses.field(default=default, metadata={"absent_when_none": True})


def fields_json(value: Any) -> dict[str, Any]:
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
        return to_json() if to_json else fields_json(value)
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
        return from_fields(kind, value)
    return plain(value)


def from_fields(cls: type, raw: dict[str, Any]) -> Any:
    hints = typing.get_type_hints(cls)
    values = {}
    for f in dataclasses.fields(cls):
        if f.name in raw:
            values[f.name] = load_value(hints[f.name], raw[f.name])
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise KeyError(f.name)
    return cls(**values)
