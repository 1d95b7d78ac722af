"""The one evaluation engine: a fitted model's features and logits on a task's splits, each
computed once, and the prediction metrics scored from them.

:class:`EvalContext` holds a fitted model on a task and computes each split's backbone features
(read from the cache when the backbone is frozen, keyed by a hash of its actual weights;
extracted otherwise) and logits once. ``run_protocol`` scores every selection and report split
through it (:func:`score_splits`), with or without the safety suite, and every safety family
(``safeadapt.safety``) reads the same context. :func:`evaluate` is the one-call form.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from safeadapt.data.features import FeatureCache
from safeadapt.data.task import Task
from safeadapt.errors import InvalidConfig
from safeadapt.metrics import METRICS
from safeadapt.model import Classifier


def score(
    logits: dict[str, Tensor], task: Task, metrics: Sequence[str] = ("accuracy",)
) -> dict[str, dict[str, float]]:
    """``{split: {metric: value}}`` from precomputed logits; a metric that returns one value
    per class (``recall``) is stored as ``<metric>:<class name>``."""
    fns = {m: METRICS.get(m) for m in metrics}
    splits = task.splits()
    out: dict[str, dict[str, float]] = {}
    for name, lg in logits.items():
        labels = torch.from_numpy(splits[name].labels)
        values: dict[str, float] = {}
        for m, fn in fns.items():
            value = fn(lg, labels)
            if isinstance(value, dict):
                values.update({f"{m}:{task.label_names[int(k)]}": v for k, v in value.items()})
            else:
                values[m] = value
        out[name] = values
    return out


@dataclass(frozen=True)
class PerExample:
    """The safety families' per-example outputs, written beside the predictions
    (``predictions.parquet``): ``columns`` -- a column's name to its values per split (e.g.
    ``feature_shift``) -- and extra ``rows`` -- a split that is not the task's (e.g. a reference
    task's probe, ``reference:<task>``) to its labels and logits."""

    columns: Mapping[str, Mapping[str, np.ndarray]] = field(default_factory=dict)
    rows: Mapping[str, tuple[np.ndarray, Tensor]] = field(default_factory=dict)


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

    def per_example(self) -> PerExample:
        """What the families added for ``predictions.parquet``."""
        return PerExample(self.columns, self.rows)

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
        return self.cache.get(self.pretrained(), split, show_progress=self.show_progress).features

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


def score_splits(
    ctx: EvalContext, metrics: Sequence[str]
) -> tuple[dict[str, Tensor], dict[str, dict[str, float]], dict[str, dict[str, float]]]:
    """Logits of every selection and report split (selection first), the metrics of the report
    splits (test, ood:*) and those of the selection splits (val, ood-val:*)."""
    task = ctx.task
    selection, evaluation = list(task.selection_splits()), list(task.eval_splits())
    logits = {name: ctx.logits(name) for name in [*selection, *evaluation]}
    report = score({k: logits[k] for k in evaluation}, task, metrics)
    return logits, report, score({k: logits[k] for k in selection}, task, metrics)


def evaluate(
    model: Classifier,
    task: Task,
    metrics: Sequence[str] = ("accuracy",),
    *,
    cache: FeatureCache | None = None,
    frozen_backbone: bool = False,
    show_progress: bool = False,
) -> dict[str, dict[str, float]]:
    """Every metric on ID test and every OOD split of ``task``."""
    ctx = EvalContext(
        model, task, cache=cache, frozen_backbone=frozen_backbone, show_progress=show_progress
    )
    return score({name: ctx.logits(name) for name in task.eval_splits()}, task, metrics)
