"""Safety families: the registry, the shared evaluation context and a family's contract.

A family is one module in ``safeadapt/safety/`` that registers a :class:`Family` subclass:

- ``Config`` -- a frozen dataclass of its budgets, validated in ``__post_init__`` (the study's
  ``safety: {<family>: {...}}`` entry; ``false`` turns the family off);
- ``Result`` -- its typed result, a frozen dataclass subclassing
  :class:`~safeadapt.results.safety.SafetyResult` (declared beside ``Config``);
- ``measure(ctx, config) -> Result`` -- what it measured; the run's record stores
  ``Result.to_json()``, and every method below gets the result read back (``read``), so a
  family never indexes JSON;
- ``scores(result) -> {key: Score}`` -- the flat numbers a run reports, each with its label,
  direction and format, so the study table, ``results.csv`` and MLflow need no per-family code;
- optionally ``figure(results, summary) -> png bytes`` over ``{variant: [result per seed]}``
  (``summary``: the study summary, for the variants' intervals);
- optionally ``intervals(results, outputs) -> {key: (low, high, method)}``: 95 % intervals of
  its scores over a variant's seeds, from their results and per-example outputs (an
  ``Outputs``: ``split(name)``, ``column(split, name)``, ``runs``);
- optionally ``facts(result) -> [str]``: what the numbers were measured on, for the report.

:class:`~safeadapt.evaluation.EvalContext` (the one evaluation engine) computes each split's
backbone features and logits once and hands them to every family; its ``passes`` counts the
backbone passes per split (benchmarked in ``bench/``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from safeadapt._registry import Registry
from safeadapt.config import build_config
from safeadapt.errors import InvalidConfig
from safeadapt.evaluation import EvalContext
from safeadapt.results import StudySummary
from safeadapt.results.safety import SafetyResult, absent  # noqa: F401  (families import them here)


@dataclass(frozen=True)
class Score:
    """One reported number: ``higher_is_better`` None = no best (a description, not a goal)."""

    value: float | None
    label: str
    higher_is_better: bool | None
    fmt: str = ".3f"


class Family:
    """Base class of a safety family (see the module docstring)."""

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""  # one line for `safeadapt list` and the report
    Config: ClassVar[type] = type(None)
    Result: ClassVar[type[SafetyResult]] = SafetyResult
    # score key -> (label, higher is better, format): the table's columns, known before any run
    SCORES: ClassVar[dict[str, tuple[str, bool | None, str]]] = {}

    def measure(self, ctx: EvalContext, config: Any) -> SafetyResult:
        raise NotImplementedError

    def read(self, raw: Mapping[str, Any]) -> Any:
        """The typed result of ``raw`` (this family's entry of a run's record); a family that
        declares no ``Result`` (written for earlier releases) gets the mapping itself."""
        if self.Result is SafetyResult:
            return raw
        return self.Result.from_json(dict(raw))

    def scores(self, result: Mapping[str, Any]) -> dict[str, Score]:
        raise NotImplementedError

    def declared(self, values: Mapping[str, float | None]) -> dict[str, Score]:
        """Each value as its ``Score``, with the label, direction and format the family
        declares in ``SCORES``."""
        return {key: Score(value, *self.SCORES[key]) for key, value in values.items()}

    def figure(
        self, results: dict[str, list[Mapping[str, Any]]], summary: StudySummary | None = None
    ) -> bytes | None:
        return None

    def intervals(self, results: list[Mapping[str, Any]], outputs: Any) -> dict[str, tuple]:
        return {}

    def facts(self, result: Mapping[str, Any]) -> list[str]:
        return []


FAMILIES: Registry[type[Family]] = Registry("safety family")


def register_family(
    name: str, order: float | None = None
) -> Callable[[type[Family]], type[Family]]:
    """Register a family; ``order`` places its columns and figures in the report (lower first;
    none: after the built-in families, in registration order)."""

    def decorator(cls: type[Family]) -> type[Family]:
        cls.name = name
        return FAMILIES.register(name, order)(cls)

    return decorator


def family(name: str) -> Family:
    return FAMILIES.get(name)()


def resolve_families(raw: Mapping[str, Any] | None) -> dict[str, Any]:
    """``{family: config or None}`` for every registered family: its default config, overridden
    by ``raw`` (``{family: {setting: value}}``); ``false`` / ``None`` turns one off. Resolving a
    resolved mapping again gives the same mapping."""
    raw = dict(raw or {})
    for name in raw:
        if name not in FAMILIES:
            raise InvalidConfig(f"study 'safety': {FAMILIES.unknown_message(name)}")
    out: dict[str, Any] = {}
    for name in FAMILIES.in_order():
        value = raw.get(name, {})
        if value is False or (value is None and name in raw):
            out[name] = None
            continue
        if value is True:
            value = {}
        cls = FAMILIES.get(name)
        out[name] = build_config(cls.Config, value, f"study 'safety' '{name}'")
    return out


def run_scores(safety: Mapping[str, Any]) -> dict[str, float | None]:
    """Every registered family's scores found in one run's ``safety`` record, flat."""
    out: dict[str, float | None] = {}
    for name in FAMILIES.in_order():
        if name in safety:
            fam = family(name)
            out.update({k: s.value for k, s in fam.scores(fam.read(safety[name])).items()})
    return out


def run_intervals(
    results: list[Mapping[str, Any]], outputs: Any, only: Collection[str] | None = None
) -> dict[str, tuple]:
    """Every family's intervals over one variant's runs (``results``: each run's ``safety``);
    ``only``: the families to compute them for (``None``: all)."""
    out: dict[str, tuple] = {}
    for name in FAMILIES.in_order():
        if only is not None and name not in only:
            continue
        fam = family(name)
        mine = [fam.read(r[name]) for r in results if r.get(name)]
        if len(mine) == len(results) and mine:
            out.update(fam.intervals(mine, outputs))
    return out


def run_facts(safety: Mapping[str, Any]) -> list[str]:
    """What one run's safety numbers were measured on, family by family."""
    return [
        f
        for name in FAMILIES.in_order()
        if safety.get(name)
        for f in family(name).facts(family(name).read(safety[name]))
    ]


def score_columns() -> list[tuple[str, str, bool | None, str]]:
    """``(key, label, higher is better, format)`` of every registered family's scores."""
    return [
        (key, label, higher, fmt)
        for name in FAMILIES.in_order()
        for key, (label, higher, fmt) in FAMILIES.get(name).SCORES.items()
    ]


def measure_families(ctx: EvalContext, configs: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Run each configured family on ``ctx`` (``None`` = off): ``{family: result}``; each
    family's wall time goes to ``ctx.seconds``."""
    import time

    out = {}
    for name, cfg in configs.items():
        if cfg is None:
            continue
        start = time.perf_counter()
        result = family(name).measure(ctx, cfg)
        out[name] = result.to_json() if isinstance(result, SafetyResult) else dict(result)
        ctx.seconds[name] = time.perf_counter() - start
    return out
