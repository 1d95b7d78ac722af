"""Safety families: the registry, the shared evaluation context and a family's contract.

A family is one module in ``safeadapt/safety/`` that registers a :class:`Family` subclass:

- ``Config`` -- a frozen dataclass of its budgets, validated in ``__post_init__`` (the study's
  ``safety: {<family>: {...}}`` entry; ``false`` turns the family off);
- ``measure(ctx, config) -> dict`` -- the result as plain JSON values (it goes into the run's
  record and must round-trip through JSON unchanged);
- ``scores(result) -> {key: Score}`` -- the flat numbers a run reports, each with its label,
  direction and format, so the study table, ``results.csv`` and MLflow need no per-family code;
- optionally ``figure(results, summary) -> png bytes`` over ``{variant: [result per seed]}``
  (``summary``: the study summary, for the variants' intervals);
- optionally ``intervals(results, outputs) -> {key: (low, high, method)}``: 95 % intervals of
  its scores over a variant's seeds, from their results and per-example outputs (an
  ``Outputs``: ``split(name)``, ``column(split, name)``, ``frames``);
- optionally ``facts(result) -> [str]``: what the numbers were measured on, for the report.

:class:`EvalContext` computes each split's backbone features and logits once and hands them to
every family; its ``passes`` counts the backbone passes per split (benchmarked in ``bench/``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from safeadapt._registry import Registry
from safeadapt.config import build_config
from safeadapt.errors import InvalidConfig
from safeadapt.results import StudySummary


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
    # score key -> (label, higher is better, format): the table's columns, known before any run
    SCORES: ClassVar[dict[str, tuple[str, bool | None, str]]] = {}

    def measure(self, ctx: EvalContext, config: Any) -> dict[str, Any]:
        raise NotImplementedError

    def scores(self, result: Mapping[str, Any]) -> dict[str, Score]:
        raise NotImplementedError

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
            out.update({k: s.value for k, s in family(name).scores(safety[name]).items()})
    return out


def run_intervals(results: list[Mapping[str, Any]], outputs: Any) -> dict[str, tuple]:
    """Every family's intervals over one variant's runs (``results``: each run's ``safety``)."""
    out: dict[str, tuple] = {}
    for name in FAMILIES.in_order():
        mine = [r[name] for r in results if r.get(name)]
        if len(mine) == len(results) and mine:
            out.update(family(name).intervals(mine, outputs))
    return out


def run_facts(safety: Mapping[str, Any]) -> list[str]:
    """What one run's safety numbers were measured on, family by family."""
    return [
        f
        for name in FAMILIES.in_order()
        if safety.get(name)
        for f in family(name).facts(safety[name])
    ]


def score_columns() -> list[tuple[str, str, bool | None, str]]:
    """``(key, label, higher is better, format)`` of every registered family's scores."""
    return [
        (key, label, higher, fmt)
        for name in FAMILIES.in_order()
        for key, (label, higher, fmt) in FAMILIES.get(name).SCORES.items()
    ]


class EvalContext:
    """What every family reads: a fitted model on a task, each split's features and logits
    computed once (cached when the backbone is frozen), the pretrained backbone's features, and
    the pretrained backbone's plain linear probe.

    Split names are the task's: ``val``, ``test``, ``ood-val:<s>``, ``ood:<s>``, ``far:<s>``.
    """

    def __init__(
        self,
        model,
        task,
        *,
        pretrained: Callable[[], Any] | Any | None = None,
        cache=None,
        frozen_backbone: bool = False,
        seed: int = 0,
        show_progress: bool = False,
    ) -> None:
        from safeadapt.data.features import FeatureCache

        self.model = model
        self.task = task
        self._pretrained = pretrained
        self.cache = cache or FeatureCache()
        self.frozen_backbone = frozen_backbone
        self.seed = seed
        self.show_progress = show_progress
        self.passes: dict[str, int] = {}  # backbone passes of the adapted model, per split
        self.seconds: dict[str, float] = {}  # wall time of each family (the --quick estimate)
        # per-example values a family adds beside the predictions: {column: {split: (N,)}}
        self.columns: dict[str, dict[str, np.ndarray]] = {}
        # extra prediction rows (e.g. reference-task probes): {row split: (labels, logits)}
        self.rows: dict[str, tuple[np.ndarray, Tensor]] = {}
        self._splits = task.splits(far=True)
        self._features: dict[str, Tensor] = {}
        self._logits: dict[str, Tensor] = {}
        self._base = None
        self._base_head = None

    # --- split names ---
    @property
    def eval_names(self) -> list[str]:
        return list(self.task.eval_splits())

    @property
    def ood_names(self) -> list[str]:
        return [k for k in self.eval_names if k.startswith("ood:")]

    @property
    def far_names(self) -> list[str]:
        return [k for k in self._splits if k.startswith("far:")]

    def labels(self, name: str) -> np.ndarray:
        return self._splits[name].labels

    # --- the adapted model ---
    def features(self, name: str) -> Tensor:
        """The adapted model's backbone features ``(N, D)`` of one split, computed once."""
        if name not in self._features:
            from safeadapt.data.features import features_of

            self._features[name] = features_of(
                self.model,
                self._splits[name],
                cache=self.cache,
                frozen_backbone=self.frozen_backbone,
                show_progress=self.show_progress,
            )
            self.passes[name] = self.passes.get(name, 0) + 1
        return self._features[name]

    @torch.no_grad()
    def logits(self, name: str) -> Tensor:
        """The model's logits ``(N, K)`` on one split (from its features; no extra pass)."""
        if name not in self._logits:
            w, b = self.head
            self._logits[name] = self.features(name).float() @ w.T + b
        return self._logits[name]

    @property
    def head(self) -> tuple[Tensor, Tensor]:
        """The model's linear head ``(weight (K, D), bias (K,))`` on CPU."""
        return (
            self.model.head.weight.detach().float().cpu(),
            self.model.head.bias.detach().float().cpu(),
        )

    def add_column(self, column: str, split: str, values: np.ndarray) -> None:
        """A per-example value of ``split`` for ``predictions.parquet`` (intervals read it)."""
        if len(values) != len(self._splits[split]):
            raise ValueError(
                f"column {column!r} has {len(values)} values; split {split!r} has "
                f"{len(self._splits[split])} examples."
            )
        self.columns.setdefault(column, {})[split] = np.asarray(values)

    def add_rows(self, split: str, labels: np.ndarray, logits: Tensor) -> None:
        """Prediction rows of a split that is not the task's (``predictions.parquet``)."""
        if split in self._splits:
            raise ValueError(f"rows {split!r} would shadow the task's split of that name.")
        self.rows[split] = (np.asarray(labels), logits.detach().float().cpu())

    # --- the pretrained backbone ---
    @property
    def has_pretrained(self) -> bool:
        return self._pretrained is not None

    def pretrained(self):
        if self._base is None:
            if self._pretrained is None:
                raise InvalidConfig("this safety family needs the pretrained backbone.")
            p = self._pretrained
            self._base = p() if callable(p) and not isinstance(p, torch.nn.Module) else p
        return self._base

    def pretrained_features(self, name: str) -> Tensor:
        """The pretrained backbone's features of a split (cached by content)."""
        split = self._splits[name]
        return self.cache.get(self.pretrained(), split, show_progress=self.show_progress)[
            "features"
        ]

    def pretrained_probe(self):
        """Plain LP on the pretrained backbone's train/val features (the adaptation-free baseline
        that flip rates compare against); fitted once per context."""
        if self._base_head is None:
            from safeadapt.linear import fit_linear_probe

            self._base_head = fit_linear_probe(
                self.pretrained_features("train"),
                torch.from_numpy(self.labels("train")),
                self.pretrained_features("val"),
                torch.from_numpy(self.labels("val")),
                self.task.num_classes,
            )
        return self._base_head


def measure_families(ctx: EvalContext, configs: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Run each configured family on ``ctx`` (``None`` = off): ``{family: result}``; each
    family's wall time goes to ``ctx.seconds``."""
    import time

    out = {}
    for name, cfg in configs.items():
        if cfg is None:
            continue
        start = time.perf_counter()
        out[name] = family(name).measure(ctx, cfg)
        ctx.seconds[name] = time.perf_counter() - start
    return out
