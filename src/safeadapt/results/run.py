"""A run's typed record: its splits' metrics, cost, name in the store and what the protocol and
the safety families report (``record.json`` through ``to_json`` / ``from_json``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from safeadapt.results._json import SCHEMA, check_schema, plain
from safeadapt.results.fit_info import FitInfo


@dataclass(frozen=True)
class SplitMetrics:
    """The prediction metrics of one split (``accuracy``, ``ece``, ``ece_adaptive``, ``nll``,
    ``brier`` by default; any registered metric), in the order they were scored."""

    values: Mapping[str, float]

    @property
    def accuracy(self) -> float:
        return self.values["accuracy"]

    @property
    def ece(self) -> float | None:
        return self.values.get("ece")

    @property
    def nll(self) -> float | None:
        return self.values.get("nll")

    @property
    def brier(self) -> float | None:
        return self.values.get("brier")

    def get(self, metric: str) -> float | None:
        return self.values.get(metric)

    def to_json(self) -> dict[str, float]:
        return dict(self.values)

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> SplitMetrics:
        return cls({str(k): v for k, v in raw.items()})


def _splits(raw: Mapping[str, Any] | None) -> dict[str, SplitMetrics]:
    return {name: SplitMetrics.from_json(m) for name, m in (raw or {}).items()}


@dataclass(frozen=True)
class RunKey:
    """Which run a record is: its content-keyed id, variant, protocol, settings and seed."""

    run_id: str
    variant: str
    label: str
    protocol: str
    settings: Mapping[str, Any]
    seed: int
    key: str

    def to_json(self) -> dict[str, Any]:
        return {f.name: plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> RunKey:
        return cls(**{f.name: raw[f.name] for f in dataclasses.fields(cls)})


@dataclass(frozen=True)
class CostPart:
    """Cost of one phase (fit or evaluation): wall time, peak memory and throughput."""

    values: Mapping[str, Any]

    @property
    def seconds(self) -> float | None:
        return self.values.get("seconds")

    @property
    def peak_rss_mb(self) -> float:
        return self.values["peak_rss_mb"]

    def get(self, name: str) -> Any:
        return self.values.get(name)


@dataclass(frozen=True)
class Cost:
    fit: CostPart
    eval: CostPart
    trainable_parameters: int

    @property
    def peak_rss_mb(self) -> float:
        return max(self.fit.peak_rss_mb, self.eval.peak_rss_mb)

    def to_json(self) -> dict[str, Any]:
        return {
            "fit": dict(self.fit.values),
            "eval": dict(self.eval.values),
            "trainable_parameters": self.trainable_parameters,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Cost:
        return cls(
            CostPart(dict(raw.get("fit") or {})),
            CostPart(dict(raw.get("eval") or {})),
            int(raw.get("trainable_parameters", 0)),
        )


@dataclass(frozen=True)
class RunRecord:
    """What a finished run reports: its report splits' metrics (test, ood:*; scored once), its
    selection splits' (val, ood-val:*), the protocol's config and fit info, the safety families'
    results, its cost. ``run`` names the run once it is stored (``None`` before), and
    ``environment`` where it was computed. ``predictions`` (a pandas frame of per-example
    outputs) travels beside the record, not in it."""

    protocol: str
    seed: int
    metrics: Mapping[str, SplitMetrics]
    selection: Mapping[str, SplitMetrics]
    fit_seconds: float
    eval_seconds: float
    config: Mapping[str, Any]
    info: Mapping[str, Any] = field(default_factory=dict)
    safety: Mapping[str, Any] = field(default_factory=dict)
    cost: Cost | None = None
    run: RunKey | None = None
    environment: Mapping[str, Any] = field(default_factory=dict)
    predictions: Any = field(default=None, repr=False, compare=False)

    @property
    def fit(self) -> FitInfo:
        """The typed view of ``info`` that code outside the protocol reads."""
        return FitInfo.from_json(dict(self.info))

    @property
    def wall_seconds(self) -> float:
        return self.fit_seconds + self.eval_seconds

    @property
    def variant(self) -> str:
        return self.run.variant if self.run is not None else self.protocol

    @property
    def run_id(self) -> str:
        if self.run is None:
            raise ValueError("this record is not stored yet: it has no run id")
        return self.run.run_id

    @property
    def test(self) -> SplitMetrics:
        return self.metrics["test"]

    def ood_splits(self) -> list[str]:
        """The OOD test splits' names (``ood:<source>``), in the task's order."""
        return [k for k in self.metrics if k.startswith("ood:")]

    def ood_val_splits(self) -> list[str]:
        return [k for k in self.selection if k.startswith("ood-val:")]

    def split(self, name: str) -> SplitMetrics | None:
        """One split's metrics, report or selection."""
        return self.metrics.get(name) or self.selection.get(name)

    def stored(self, run: RunKey, environment: Mapping[str, Any] | None = None) -> RunRecord:
        """This record, named as the stored run ``run``."""
        env = self.environment if environment is None else environment
        return dataclasses.replace(self, run=run, environment=dict(env))

    def to_json(self) -> dict[str, Any]:
        """The record as ``record.json`` holds it (without ``checksum``, added by the store)."""
        out: dict[str, Any] = {
            "schema": SCHEMA,
            "protocol": self.protocol,
            "seed": self.seed,
            "metrics": {k: m.to_json() for k, m in self.metrics.items()},
            "selection": {k: m.to_json() for k, m in self.selection.items()},
            "fit_seconds": self.fit_seconds,
            "eval_seconds": self.eval_seconds,
            "config": plain(dict(self.config)),
            "info": plain(dict(self.info)),
            "safety": plain(dict(self.safety)),
            "cost": self.cost.to_json() if self.cost is not None else {},
            "wall_seconds": self.wall_seconds,
        }
        if self.environment:
            out["environment"] = plain(dict(self.environment))
        if self.run is not None:
            out["run"] = self.run.to_json()
        return out

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> RunRecord:
        """Read a ``record.json`` (this schema, or one written before it had a number)."""
        check_schema(raw, "record")
        return cls(
            protocol=str(raw["protocol"]),
            seed=int(raw["seed"]),
            metrics=_splits(raw["metrics"]),
            selection=_splits(raw.get("selection")),
            fit_seconds=float(raw["fit_seconds"]),
            eval_seconds=float(raw["eval_seconds"]),
            config=plain(dict(raw.get("config") or {})),
            info=plain(dict(raw.get("info") or {})),
            safety=plain(dict(raw.get("safety") or {})),
            cost=Cost.from_json(raw["cost"]) if raw.get("cost") else None,
            run=RunKey.from_json(raw["run"]) if raw.get("run") else None,
            environment=plain(dict(raw.get("environment") or {})),
        )
