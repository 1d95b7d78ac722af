"""A study's pre-flight results, typed: the shift report and the bias audit (by check name)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from safeadapt.results._json import plain
from safeadapt.results.audit import AuditReport
from safeadapt.results.shift import ShiftReport


@dataclass(frozen=True)
class Preflight:
    """A study's pre-flight results by check name (``safeadapt.study.preflight``): ``shift`` a
    :class:`ShiftReport`; others (``audit``) as their JSON. ``to_json`` is the layout of the
    summary's ``preflight`` entry."""

    results: dict[str, Any] = field(default_factory=dict)

    @property
    def shift(self) -> ShiftReport | None:
        return self.results.get("shift")

    @property
    def audit(self) -> AuditReport | None:
        """The bias audit of the training set (``safeadapt.bias.audit``), when it ran."""
        return self.results.get("audit")

    def __bool__(self) -> bool:
        return bool(self.results)

    def to_json(self) -> dict[str, Any]:
        return {
            k: v.to_json() if hasattr(v, "to_json") else plain(v) for k, v in self.results.items()
        }

    @classmethod
    def from_json(cls, raw: Any) -> Preflight:
        return cls({k: read_check(k, v) for k, v in (raw or {}).items()})


def read_check(name: str, raw: Any) -> Any:
    """A stored pre-flight result, typed where it has a type."""
    readers = {"shift": ShiftReport.from_json, "audit": AuditReport.from_json}
    return readers[name](raw) if name in readers else plain(raw)
