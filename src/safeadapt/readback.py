"""Files safeadapt wrote and reads back are untrusted input: one typed, total reader for them.

An export folder arrives from another team or a registry, a monitor state lives on a shared
volume, a results folder is restored from a CI cache. Each JSON file read back goes through
:func:`read_object` (readable JSON, an object at the top) and :func:`typed` (every key known,
none missing, each value of its declared type and finite), and each failure is a
:class:`~safeadapt.errors.DataError` -- exit 2, one line naming the file, the key and the fix --
never an internal error. The types are the dataclasses' own hints, so a reader cannot drift
from the writer.

:func:`safe_part` is the one rule that turns a name from data (a label, a variant) into a file
name part: the study's folders use the same.
"""

from __future__ import annotations

import contextvars
import dataclasses
import json
import math
import types
import typing
from pathlib import Path
from typing import Any

from safeadapt.errors import DataError

_NONFINITE = contextvars.ContextVar("nonfinite", default=False)
MAX_BYTES = 256 << 20  # a JSON file safeadapt writes is far smaller; refuse before reading more


def read_object(path: Path, fix: str) -> dict[str, Any]:
    """The JSON object in ``path``; ``DataError`` (naming ``path`` and ``fix``) when it is too
    large, unreadable, not JSON or not an object."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise DataError(f"{path} is {size:,} bytes, not a file safeadapt wrote; {fix}.")
        raw = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as err:
        if isinstance(err, DataError):
            raise
        raise DataError(f"{path} is not readable JSON ({_short(err)}); {fix}.") from None
    if not isinstance(raw, dict):
        raise DataError(f"{path} holds {_kind(raw)}, not a JSON object; {fix}.")
    return raw


def typed(
    cls: type, raw: Any, where: str, fix: str, ignore: frozenset[str] = frozenset(),
    nonfinite: bool = False,
) -> Any:  # fmt: skip
    """``raw`` read as the dataclass ``cls``: a missing key (without a default), an unknown key
    (not a field, not in ``ignore``), or a value not of its field's type is a ``DataError``
    naming ``where`` and the key. Numbers must be finite unless ``nonfinite`` (a measured
    p-value may be NaN)."""
    token = _NONFINITE.set(nonfinite)
    try:
        return _dataclass(cls, raw, where, fix, ignore)
    finally:
        _NONFINITE.reset(token)


def typed_fields(
    cls: type, raw: Any, where: str, fix: str, skip: frozenset[str] = frozenset(),
    ignore: frozenset[str] = frozenset(),
) -> dict[str, Any]:  # fmt: skip
    """The fields of the dataclass ``cls`` but those in ``skip`` (stored elsewhere, e.g.
    tensors), read from ``raw`` as :func:`typed` reads them; a dict of the values present."""
    if not isinstance(raw, dict):
        raise DataError(f"{where} must be a JSON object; got {_kind(raw)}; {fix}.")
    hints = typing.get_type_hints(cls)
    wanted = [f for f in dataclasses.fields(cls) if f.init and f.name not in skip]
    unknown = sorted(set(raw) - {f.name for f in wanted} - ignore, key=str)
    if unknown:
        raise DataError(f"{where} has unknown key {unknown[0]!r}; {fix}.")
    values = {}
    for f in wanted:
        if f.name in raw:
            values[f.name] = _value(hints[f.name], raw[f.name], f"{where}: key {f.name!r}", fix)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise DataError(f"{where} misses key {f.name!r}; {fix}.")
    return values


def _dataclass(cls: type, raw: Any, where: str, fix: str, ignore: frozenset[str] = frozenset()):
    values = typed_fields(cls, raw, where, fix, ignore=ignore)
    try:
        return cls(**values)
    except (TypeError, ValueError) as err:  # the class's own checks (__post_init__)
        raise DataError(f"{where}: {_short(err)}; {fix}.") from None


def _value(kind: Any, value: Any, where: str, fix: str) -> Any:
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if kind is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        errors = []
        for a in inner:
            try:
                return _value(a, value, where, fix)
            except DataError as err:
                errors.append(err)
        raise errors[0] if len(errors) == 1 else _wrong(where, kind, value, fix)
    if origin is dict:
        if not isinstance(value, dict):
            raise _wrong(where, kind, value, fix)
        key_kind, item_kind = args or (str, Any)
        return {_value(key_kind, k, where, fix): _value(item_kind, v, f"{where}[{k!r}]", fix)
                for k, v in value.items()}  # fmt: skip
    if origin in (list, tuple):
        if not isinstance(value, list):
            raise _wrong(where, kind, value, fix)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise DataError(f"{where} must hold {len(args)} values; got {len(value)}; {fix}.")
            return tuple(_value(a, v, f"{where}[{i}]", fix) for i, (a, v) in
                         enumerate(zip(args, value, strict=True)))  # fmt: skip
        item = args[0] if args else Any
        return origin(_value(item, v, f"{where}[{i}]", fix) for i, v in enumerate(value))
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        return _dataclass(kind, value, where, fix)
    if kind is bool:
        if not isinstance(value, bool):
            raise _wrong(where, kind, value, fix)
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int) or abs(value) >= 2**63:
            raise _wrong(where, kind, value, fix)
        return value
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _wrong(where, kind, value, fix)
        if not math.isfinite(value) and not _NONFINITE.get():
            raise DataError(f"{where} must be a finite number; got {value!r}; {fix}.")
        return float(value)
    if kind is str:
        if not isinstance(value, str):
            raise _wrong(where, kind, value, fix)
        return value
    if kind is type(None):
        if value is not None:
            raise _wrong(where, kind, value, fix)
        return None
    raise TypeError(f"readback: no rule for {kind!r}")  # a programming error, not input


def _wrong(where: str, kind: Any, value: Any, fix: str) -> DataError:
    return DataError(f"{where} must be {_name(kind)}; got {_kind(value)}; {fix}.")


def _name(kind: Any) -> str:
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_name(a) for a in args)
    if origin is dict:
        return "an object"
    if origin in (list, tuple):
        return "a list"
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        return "an object"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a text",
            type(None): "null"}.get(kind, str(kind))  # fmt: skip


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"{str(value).lower()}"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _short(err: Exception) -> str:
    text = str(err) or type(err).__name__
    return text if len(text) <= 120 else text[:117] + "..."


def safe_part(name: str, limit: int | None = None) -> str:
    """``name`` as one file-name part: letters, digits and ``-_.=`` kept, every other character
    ``_`` (the study's run folders use this rule); a part that would be empty or start with a
    dot (``..``, a hidden file) is prefixed with ``_``; at most ``limit`` characters. The result
    never holds a separator, so it cannot leave the folder it is joined to."""
    text = "".join(c if c.isalnum() or c in "-_.=" else "_" for c in str(name))
    if not text or text.startswith("."):
        text = "_" + text
    return text if limit is None else text[:limit]


def inside(root: Path, path: Path) -> Path:
    """``path``, checked to resolve inside ``root`` (a second guard after :func:`safe_part`)."""
    resolved, base = Path(path).resolve(), Path(root).resolve()
    if resolved != base and base not in resolved.parents:
        raise DataError(f"refused to write {path}: it is outside {root}.")
    return path


# Cyrillic and Greek letters drawn like Latin ones (a subset of Unicode's confusables, TR39)
_LOOK_ALIKE = str.maketrans("асеорхуіјѕԁһӏаеорсухіѕјԛԝоαβεικνορτυχ",
                            "aceopxyijsdhlaeopcyxisjqwoabeikvoptux")  # fmt: skip


def skeleton(name: str) -> str:
    """What a name looks like: NFKC-normalised, case and spacing folded, Cyrillic and Greek
    letters drawn like Latin ones mapped to them. Two names with one skeleton read as one
    (``lp`` with a Cyrillic ``р``, ``LP``, ``l p``) and are refused as two."""
    import unicodedata

    text = unicodedata.normalize("NFKC", " ".join(str(name).split())).casefold()
    return text.translate(_LOOK_ALIKE).replace(" ", "")
