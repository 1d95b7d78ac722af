"""Helpers of the results' JSON readers and writers."""

from __future__ import annotations

import copy
import dataclasses
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
