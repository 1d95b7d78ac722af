"""The base of a safety family's typed result (``safeadapt.safety``).

A family declares its result beside its ``Config``: a frozen dataclass subclassing
:class:`SafetyResult`, whose fields are JSON values, other typed parts (dataclasses with
``from_json``) or dicts / lists / tuples of them. ``to_json()`` is the family's entry in a run's
``record.json`` (a field declared with :func:`absent` is left out while it is ``None``, so a
family that measured nothing writes ``{}``, as before); ``from_json`` reads it back. The
conversion is generic, so a family writes no JSON code.
"""

from __future__ import annotations

from typing import Any

from safeadapt.results._json import (  # noqa: F401  (what a family with its own layout uses)
    absent,
    dump_value,
    fields_json,
    from_fields,
    load_value,
)


class SafetyResult:
    """Base of a family's typed result (see the module docstring)."""

    def to_json(self) -> dict[str, Any]:
        return fields_json(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]):
        """The result of ``raw`` (a family's entry of ``record.json``); ``KeyError`` names a
        required entry that is missing."""
        return from_fields(cls, raw)
