"""A study's typed summary: every variant's scores with their intervals, the verdict (both
selection rules, the paired comparisons), the ``checks:`` outcome (``summary.json`` through
``StudySummary.to_json`` / ``from_json``)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from safeadapt.results._json import SCHEMA, FlatJson, check_schema, fields_json, from_fields, plain
from safeadapt.results.preflight import Preflight


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
        """Read strictly (``safeadapt.readback``): a score of the wrong type is exit 2, not a
        comparison that fails inside a check."""
        from safeadapt.readback import typed

        return typed(cls, raw, "summary.json score", "run the study again", nonfinite=True)


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
class PairedTest(FlatJson):
    """A paired test of two variants on the same examples: the accuracy difference A - B, the
    examples only A / only B gets right, the p-value and the test's name."""

    difference: float
    only_a: int
    only_b: int
    p_value: float
    test: str


@dataclass(frozen=True)
class Comparison(FlatJson):
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
class DisagreementExample:
    """One example only one of the two gets right: its index in the split, a short description
    (the text, or ``image #i``), its label and both predictions."""

    index: int
    input: str
    label: str
    pick: str
    runner_up: str


@dataclass(frozen=True)
class DisagreementSide:
    count: int
    examples: tuple[DisagreementExample, ...]


@dataclass(frozen=True)
class SplitDisagreement:
    pick_wrong_runner_right: DisagreementSide
    pick_right_runner_wrong: DisagreementSide

    def sides(self) -> tuple[tuple[str, DisagreementSide], ...]:
        return (
            ("pick_wrong_runner_right", self.pick_wrong_runner_right),
            ("pick_right_runner_wrong", self.pick_right_runner_wrong),
        )


@dataclass(frozen=True)
class Disagreements:
    """Where the pick and the runner-up disagree, per test split (first seed of each)."""

    runner_up: str
    splits: dict[str, SplitDisagreement]

    def to_json(self) -> dict[str, Any]:
        return fields_json(self)

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Disagreements | None:
        """``None`` for an empty entry (no runner-up, or no per-example outputs)."""
        return from_fields(cls, dict(raw)) if raw else None


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
    disagreements: Disagreements | None = None

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
            "disagreements": self.disagreements.to_json() if self.disagreements else {},
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
            disagreements=Disagreements.from_json(raw.get("disagreements") or {}),
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
    preflight: Preflight = field(default_factory=Preflight)
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
            out["preflight"] = self.preflight.to_json()
        if self.inputs:
            out["inputs"] = plain(dict(self.inputs))
        if self.checks is not None:
            out["checks"] = self.checks.to_json()
        return out

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> StudySummary:
        """Read a ``summary.json`` (this schema, or one written before it had a number)."""
        check_schema(raw, "summary")
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
            preflight=Preflight.from_json(raw.get("preflight")),
            inputs=plain(dict(raw.get("inputs") or {})),
            checks=CheckReport.from_json(raw["checks"]) if raw.get("checks") else None,
        )
