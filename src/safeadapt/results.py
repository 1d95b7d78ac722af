"""Typed results: what a run and a study report, as frozen dataclasses.

JSON appears only at the store boundary: ``RunRecord.to_json()`` / ``from_json()`` for a run's
``record.json``, ``StudySummary.to_json()`` / ``from_json()`` for ``summary.json``. Both carry
``schema`` (``SCHEMA``); a file without it was written before the schema had a number (version
0, the same layout) and reads the same way. Everything between the store and the screen --
recommend, checks, export, the writers, the trackers, the report -- takes these objects.

Parts whose layout belongs to a plug-in stay mappings, owned and read by that plug-in: a run's
``config`` (the protocol's config), ``info`` (what the protocol reports about its fit) and
``safety`` (one entry per safety family, read through the family's ``scores`` / ``facts``).

Each built-in score's metadata (label, direction, format) is declared once, in ``SCORES``; the
safety families declare theirs on the family (``Family.SCORES``).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

SCHEMA = 1


@dataclass(frozen=True)
class ScoreSpec:
    """What a score means: its ``label`` in sentences, its ``header`` in the study table (none:
    not a column), whether higher is better (``None``: no best, a description not a goal) and
    its number format."""

    label: str
    higher_is_better: bool | None
    fmt: str = ".3f"
    header: str | None = None


# the run-level scores every study has, besides accuracy:ood:<split> and the safety families'
# (the names ``checks:`` may bound; ``run_scores`` returns exactly these, tested). Order: the
# scores' order in a variant's summary.
SCORES: dict[str, ScoreSpec] = {
    "val_accuracy": ScoreSpec("ID-val accuracy", True, header="ID-val acc (selection)"),
    "ood_val_accuracy": ScoreSpec(
        "OOD-val accuracy (mean)", True, header="OOD-val acc (selection)"
    ),
    "val_ece": ScoreSpec("ID-val ECE", False),
    "id_accuracy": ScoreSpec("ID test accuracy", True, header="ID acc"),
    "ood_accuracy": ScoreSpec("OOD test accuracy (mean)", True, header="OOD acc (mean)"),
    "ece": ScoreSpec("ID test ECE", False, header="ECE"),
    "nll": ScoreSpec("ID test NLL", False, header="NLL"),
    "brier": ScoreSpec("ID test Brier score", False),
    "fit_seconds": ScoreSpec("fit wall time (s)", False, ".1f", header="fit s"),
    "eval_seconds": ScoreSpec("evaluation wall time (s)", False, ".1f"),
    "trainable_parameters": ScoreSpec(
        "trainable parameters", None, ",.0f", header="trainable params"
    ),
    "peak_rss_mb": ScoreSpec("peak resident memory (MB)", False, ".0f"),
}


def _plain(value: Any) -> Any:
    """A deep copy, so a frozen result never shares a mutable part with its caller."""
    return copy.deepcopy(value)


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
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

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
            "config": _plain(dict(self.config)),
            "info": _plain(dict(self.info)),
            "safety": _plain(dict(self.safety)),
            "cost": self.cost.to_json() if self.cost is not None else {},
            "wall_seconds": self.wall_seconds,
        }
        if self.environment:
            out["environment"] = _plain(dict(self.environment))
        if self.run is not None:
            out["run"] = self.run.to_json()
        return out

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> RunRecord:
        """Read a ``record.json`` (this schema, or one written before it had a number)."""
        version = raw.get("schema", 0)
        if not isinstance(version, int) or version > SCHEMA:
            raise ValueError(
                f"record schema {version!r} is newer than this safeadapt's ({SCHEMA}): "
                "upgrade safeadapt to read it"
            )
        return cls(
            protocol=str(raw["protocol"]),
            seed=int(raw["seed"]),
            metrics=_splits(raw["metrics"]),
            selection=_splits(raw.get("selection")),
            fit_seconds=float(raw["fit_seconds"]),
            eval_seconds=float(raw["eval_seconds"]),
            config=_plain(dict(raw.get("config") or {})),
            info=_plain(dict(raw.get("info") or {})),
            safety=_plain(dict(raw.get("safety") or {})),
            cost=Cost.from_json(raw["cost"]) if raw.get("cost") else None,
            run=RunKey.from_json(raw["run"]) if raw.get("run") else None,
            environment=_plain(dict(raw.get("environment") or {})),
        )


@dataclass(frozen=True)
class ScoreSummary:
    """A variant's score over its seeds: mean, standard deviation and count; the 95 % interval
    from the per-example outputs (``ci_*``, with its method) and, with two seeds or more, the
    t-interval across seeds (``seed_ci_*``)."""

    mean: float
    std: float
    n: int
    ci_low: float | None = None
    ci_high: float | None = None
    ci_method: str | None = None
    seed_ci_low: float | None = None
    seed_ci_high: float | None = None

    @property
    def has_interval(self) -> bool:
        return self.ci_low is not None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mean": self.mean, "std": self.std, "n": self.n}
        if self.ci_low is not None:
            out.update(ci_low=self.ci_low, ci_high=self.ci_high, ci_method=self.ci_method)
        if self.seed_ci_low is not None:
            out.update(seed_ci_low=self.seed_ci_low, seed_ci_high=self.seed_ci_high)
        return out

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> ScoreSummary:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in names})


@dataclass(frozen=True)
class VariantSummary:
    """One variant (protocol + grid point) over its seeds: every score it has."""

    variant: str
    protocol: str
    seeds: tuple[int, ...]
    scores: Mapping[str, ScoreSummary]

    def mean(self, score: str, default: float | None = None) -> float | None:
        s = self.scores.get(score)
        return default if s is None else s.mean

    def to_json(self) -> dict[str, Any]:
        return {
            "variant": self.variant,
            "protocol": self.protocol,
            "seeds": list(self.seeds),
            "scores": {k: s.to_json() for k, s in self.scores.items()},
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> VariantSummary:
        return cls(
            str(raw["variant"]),
            str(raw["protocol"]),
            tuple(raw.get("seeds") or ()),
            {k: ScoreSummary.from_json(s) for k, s in raw["scores"].items()},
        )


@dataclass(frozen=True)
class PairedTest:
    """A paired test of two variants on the same examples: the accuracy difference A - B, the
    examples only A / only B gets right, the p-value and the test's name."""

    difference: float
    only_a: int
    only_b: int
    p_value: float
    test: str

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> PairedTest:
        return cls(**{f.name: raw[f.name] for f in dataclasses.fields(cls)})


@dataclass(frozen=True)
class Comparison:
    """The pick against one other variant on a test metric, Holm-corrected, with its verdict
    (better / not distinguishable / worse)."""

    metric: str
    other: str
    difference: float
    only_pick: int
    only_other: int
    p_value: float
    test: str
    p_holm: float
    verdict: str

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Comparison:
        return cls(**{f.name: raw[f.name] for f in dataclasses.fields(cls)})


@dataclass(frozen=True)
class RuleChoice:
    """What one selection rule (``ood-val`` or ``id-val``) picked, from which candidates and
    why."""

    rule: str
    title: str
    variant: str
    criteria: tuple[str, ...]
    pareto_front: tuple[str, ...]
    candidates: tuple[str, ...]
    tied: tuple[str, ...]
    tie_tests: Mapping[str, PairedTest]
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "title": self.title,
            "variant": self.variant,
            "criteria": list(self.criteria),
            "pareto_front": list(self.pareto_front),
            "candidates": list(self.candidates),
            "tied": list(self.tied),
            "tie_tests": {k: t.to_json() for k, t in self.tie_tests.items()},
            "reason": self.reason,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> RuleChoice:
        return cls(
            rule=raw["rule"],
            title=raw["title"],
            variant=raw["variant"],
            criteria=tuple(raw["criteria"]),
            pareto_front=tuple(raw["pareto_front"]),
            candidates=tuple(raw["candidates"]),
            tied=tuple(raw["tied"]),
            tie_tests={k: PairedTest.from_json(t) for k, t in raw["tie_tests"].items()},
            reason=raw["reason"],
        )


@dataclass(frozen=True)
class Verdict:
    """The recommendation: the pick, the rule that decided and both rules' choices, the
    paired comparisons of the pick with every other variant on the test splits and where the
    pick and the runner-up disagree (``disagreements``: per split, examples only one gets
    right)."""

    variant: str
    selection: str
    rules: Mapping[str, RuleChoice]
    reason: str
    splits_seen: str
    rule: str
    pairwise: tuple[Comparison, ...] = ()
    disagreements: Mapping[str, Any] = field(default_factory=dict)

    @property
    def chosen(self) -> RuleChoice:
        return self.rules[self.selection]

    @property
    def criteria(self) -> tuple[str, ...]:
        return self.chosen.criteria

    @property
    def pareto_front(self) -> tuple[str, ...]:
        return self.chosen.pareto_front

    @property
    def candidates(self) -> tuple[str, ...]:
        return self.chosen.candidates

    def to_json(self) -> dict[str, Any]:
        return {
            "variant": self.variant,
            "selection": self.selection,
            "rules": {k: r.to_json() for k, r in self.rules.items()},
            "criteria": list(self.criteria),
            "pareto_front": list(self.pareto_front),
            "candidates": list(self.candidates),
            "reason": self.reason,
            "splits_seen": self.splits_seen,
            "rule": self.rule,
            "pairwise": [c.to_json() for c in self.pairwise],
            "disagreements": _plain(dict(self.disagreements)),
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Verdict:
        return cls(
            variant=raw["variant"],
            selection=raw["selection"],
            rules={k: RuleChoice.from_json(r) for k, r in raw["rules"].items()},
            reason=raw["reason"],
            splits_seen=raw["splits_seen"],
            rule=raw["rule"],
            pairwise=tuple(Comparison.from_json(c) for c in raw.get("pairwise") or ()),
            disagreements=_plain(dict(raw.get("disagreements") or {})),
        )


@dataclass(frozen=True)
class CheckResult:
    """One ``checks:`` row on the checked variant: the bound's ``name`` (``min_<score>``,
    ``max_<score>`` or ``shift``), the ``score`` it reads, the ``bound``, its ``side`` (min /
    max; none for the shift check), the ``value`` found, whether it ``passed`` and a ``note``."""

    name: str
    score: str
    bound: Any
    value: Any
    passed: bool
    side: str | None = None
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "score": self.score, "bound": self.bound}
        if self.side is not None:
            out["side"] = self.side
        out.update(value=self.value, passed=self.passed)
        if self.note is not None:
            out["note"] = self.note
        return out

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> CheckResult:
        return cls(
            name=raw["name"],
            score=raw.get("score", raw["name"]),
            bound=raw.get("bound"),
            value=raw.get("value"),
            passed=bool(raw["passed"]),
            side=raw.get("side"),
            note=raw.get("note"),
        )


@dataclass(frozen=True)
class CheckReport:
    """The study's ``checks:`` evaluated on one variant (the pick unless the checks name
    one), on the ``use`` side of each score (the mean, or an interval's bound)."""

    variant: str
    use: str
    passed: bool
    checks: tuple[CheckResult, ...]

    @property
    def failed(self) -> list[str]:
        return [c.name for c in self.checks if not c.passed]

    def to_json(self) -> dict[str, Any]:
        return {
            "variant": self.variant,
            "use": self.use,
            "passed": self.passed,
            "checks": [c.to_json() for c in self.checks],
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> CheckReport:
        return cls(
            raw["variant"],
            raw["use"],
            bool(raw["passed"]),
            tuple(CheckResult.from_json(c) for c in raw["checks"]),
        )


@dataclass(frozen=True)
class StudySummary:
    """A study's summary (``summary.json``): what was studied, every variant's scores, the
    verdict, the pre-flight checks, the content the verdict was computed from (``inputs``, for
    ``check`` and ``export`` to refuse a stale study) and the ``checks:`` outcome."""

    study: str
    task: str
    modality: str
    backbone: str
    label_names: tuple[str, ...]
    notes: tuple[str, ...]
    sizes: Mapping[str, int]
    seeds: tuple[int, ...]
    splits: tuple[str, ...]
    selection_splits: tuple[str, ...]
    variants: tuple[VariantSummary, ...]
    recommendation: Verdict
    safety: tuple[str, ...] | None = None
    preflight: Mapping[str, Any] = field(default_factory=dict)
    inputs: Mapping[str, Any] = field(default_factory=dict)
    checks: CheckReport | None = None

    def variant(self, name: str) -> VariantSummary:
        for v in self.variants:
            if v.variant == name:
                return v
        raise KeyError(f"no variant {name!r} in study {self.study!r}")

    @property
    def pick(self) -> VariantSummary:
        return self.variant(self.recommendation.variant)

    def ood_splits(self) -> list[str]:
        return [s for s in self.splits if s.startswith("ood:")]

    def __iter__(self) -> Iterator[VariantSummary]:
        return iter(self.variants)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schema": SCHEMA,
            "study": self.study,
            "task": self.task,
            "modality": self.modality,
            "backbone": self.backbone,
            "label_names": list(self.label_names),
            "notes": list(self.notes),
            "sizes": dict(self.sizes),
            "seeds": list(self.seeds),
            "splits": list(self.splits),
            "selection_splits": list(self.selection_splits),
            "variants": [v.to_json() for v in self.variants],
            "recommendation": self.recommendation.to_json(),
            "safety": None if self.safety is None else list(self.safety),
        }
        if self.preflight:
            out["preflight"] = _plain(dict(self.preflight))
        if self.inputs:
            out["inputs"] = _plain(dict(self.inputs))
        if self.checks is not None:
            out["checks"] = self.checks.to_json()
        return out

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> StudySummary:
        """Read a ``summary.json`` (this schema, or one written before it had a number)."""
        version = raw.get("schema", 0)
        if not isinstance(version, int) or version > SCHEMA:
            raise ValueError(
                f"summary schema {version!r} is newer than this safeadapt's ({SCHEMA}): "
                "upgrade safeadapt to read it"
            )
        safety = raw.get("safety")
        return cls(
            study=str(raw["study"]),
            task=str(raw["task"]),
            modality=str(raw["modality"]),
            backbone=str(raw["backbone"]),
            label_names=tuple(raw["label_names"]),
            notes=tuple(raw.get("notes") or ()),
            sizes=dict(raw.get("sizes") or {}),
            seeds=tuple(raw.get("seeds") or ()),
            splits=tuple(raw["splits"]),
            selection_splits=tuple(raw.get("selection_splits") or ()),
            variants=tuple(VariantSummary.from_json(v) for v in raw["variants"]),
            recommendation=Verdict.from_json(raw["recommendation"]),
            safety=None if safety is None else tuple(safety),
            preflight=_plain(dict(raw.get("preflight") or {})),
            inputs=_plain(dict(raw.get("inputs") or {})),
            checks=CheckReport.from_json(raw["checks"]) if raw.get("checks") else None,
        )
