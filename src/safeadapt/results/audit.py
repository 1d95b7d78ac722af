"""The bias audit of a finetuning set as a typed result (``safeadapt.bias.audit``).

``AuditReport.to_json()`` is the layout of ``safeadapt audit``'s output and of a study's
pre-flight ``audit`` entry (unchanged from the dicts of earlier releases); ``from_json`` reads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from safeadapt.results._json import FlatJson, absent, fields_json


@dataclass(frozen=True)
class GroupRow(FlatJson):
    """One group: its size, its share of the set and the rate of each label in it."""

    count: int
    share: float
    label_rate: dict[str, float]


@dataclass(frozen=True)
class AuditReport:
    """Representation and label-group association of a set (``safeadapt.bias``)."""

    n: int
    groups: dict[str, GroupRow]
    p_group_given_label: dict[str, dict[str, float]]
    cramers_v: float
    mutual_information_nats: float
    normalized_mutual_information: float
    flags: tuple[str, ...]
    phi: dict[str, float] | None = None  # binary label x two groups: each group's phi

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "n": self.n,
            "groups": {g: row.to_json() for g, row in self.groups.items()},
            "p_group_given_label": {k: dict(v) for k, v in self.p_group_given_label.items()},
            "cramers_v": self.cramers_v,
            "mutual_information_nats": self.mutual_information_nats,
            "normalized_mutual_information": self.normalized_mutual_information,
            "flags": list(self.flags),
        }
        if self.phi is not None:
            out["phi"] = dict(self.phi)
        return out

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> AuditReport:
        phi = raw.get("phi")
        return cls(
            n=int(raw["n"]),
            groups={g: GroupRow.from_json(row) for g, row in raw["groups"].items()},
            p_group_given_label={k: dict(v) for k, v in raw["p_group_given_label"].items()},
            cramers_v=float(raw["cramers_v"]),
            mutual_information_nats=float(raw["mutual_information_nats"]),
            normalized_mutual_information=float(raw["normalized_mutual_information"]),
            flags=tuple(raw.get("flags") or ()),
            phi=None if phi is None else dict(phi),
        )

    def _repr_html_(self) -> str:
        """The audit in Jupyter: a row per group, Cramer's V and the flags."""
        import html

        rows = "".join(
            f"<tr><td>{html.escape(g)}</td><td>{row.count}</td><td>{row.share:.1%}</td><td>"
            + html.escape(", ".join(f"{k} {v:.0%}" for k, v in row.label_rate.items()))
            + "</td></tr>"
            for g, row in self.groups.items()
        )
        flags = "".join(f"<li>{html.escape(f)}</li>" for f in self.flags) or "<li>none</li>"
        return (
            "<table><thead><tr><th>group</th><th>n</th><th>share</th><th>label rates</th></tr>"
            f"</thead><tbody>{rows}</tbody></table><p>Cramér's V {self.cramers_v:.3f}; "
            f"flags:</p><ul>{flags}</ul>"
        )


@dataclass(frozen=True)
class CurationReport:
    """What ``safeadapt.bias.curate`` did: the (group|label) cell counts before, and -- when
    resampling -- after, with how many examples were dropped or duplicated, each group's share
    and, for a correlation target, the achieved colour-label correlation (phi) before and after;
    when reweighting, each cell's target count instead. ``to_json()`` is ``safeadapt curate``'s
    output (the entries a mode does not produce are left out)."""

    mode: str
    cells_before: dict[str, int]
    size: int | None = absent()
    cells_after: dict[str, int] | None = absent()
    target_cells: dict[str, int] | None = absent()
    dropped: int | None = absent()
    duplicated: int | None = absent()
    group_shares: dict[str, float] | None = absent()
    correlation: float | None = absent()
    correlation_before: float | None = absent()

    def to_json(self) -> dict[str, Any]:
        return fields_json(self)
