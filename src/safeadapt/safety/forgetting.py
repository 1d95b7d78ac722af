"""Concept forgetting (Mukhoti et al. 2023): what the backbone knew about *other* tasks.

For each reference task (built-in datasets of the same modality, other than the target, or the
user's own data named in ``reference_data``: files, image folders or ``hub:`` datasets), a plain
linear probe (``safeadapt.linear``, C chosen on the reference task's validation split) is fitted on
the adapted backbone's features and on the pretrained backbone's; forgetting is the test-accuracy
difference, after minus before (negative = forgotten). A frozen backbone (LP) has the pretrained
features by construction: its delta is exactly 0 and nothing is recomputed. Reference tasks whose
data are not installed are skipped with a note.

Each probe's test predictions go into ``predictions.parquet`` as rows ``reference:<task>``
(adapted) and ``reference-before:<task>`` (pretrained); the interval is a paired bootstrap over
them, stratified by task (the probes' own fitting noise is not in it).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from safeadapt.config import MAX_SAMPLE, Rule, check_settings, count, each, one_of, setting
from safeadapt.errors import AssetMissing
from safeadapt.metrics.forgetting import TaskForgetting
from safeadapt.results import StudySummary
from safeadapt.safety.base import (
    EvalContext,
    Family,
    SafetyResult,
    Score,
    absent,
    register_family,
)

REFERENCE_TASKS = {
    "text": ("vader-domain", "tweet-topic"),
    "image": ("mnist", "fashion-mnist", "digits"),
}


def _task_names() -> tuple[str, ...]:
    from safeadapt.data.builtin import TASKS

    return tuple(TASKS.names())


# what a reference_data entry may give: its sources and the columns to read (``load_task``'s)
REFERENCE_KEYS = ("train", "test", "validation", "text_column", "image_column", "label_column")
MAX_REFERENCE_DATA = 20


def _is_reference_source(entry: Any) -> bool:
    return (
        isinstance(entry, Mapping)
        and set(entry) <= set(REFERENCE_KEYS)
        and all(isinstance(entry.get(k), str) and entry.get(k).strip() for k in ("train", "test"))
        and all(v is None or isinstance(v, str) for v in entry.values())
    )


def reference_sources() -> Rule:
    """A mapping of names (not built-in task names) to ``{train, test}`` sources, optionally
    ``validation`` and the columns, at most ``MAX_REFERENCE_DATA`` of them."""
    return Rule(
        "a mapping of names to {train: source, test: source} (optionally validation, "
        "text_column, image_column, label_column), each name not a built-in task's, at most "
        f"{MAX_REFERENCE_DATA} of them",
        lambda v: (
            isinstance(v, Mapping)
            and all(
                isinstance(k, str) and k and k not in _task_names() and _is_reference_source(e)
                for k, e in v.items()
            )
        ),  # fmt: skip
        limit=None,
    )


@dataclass(frozen=True)
class ForgettingConfig:
    """Concept forgetting: linear-probe accuracy on other tasks with the pretrained vs the
    adapted backbone."""

    reference_tasks: tuple[str, ...] | None = setting(
        None, "built-in task names; null: the modality's, minus the target; []: none",
        each(one_of(_task_names), least=0, limit=100),
    )  # fmt: skip
    max_train: int = setting(600, "each reference task's probe-training size",
                             count(1, MAX_SAMPLE))  # fmt: skip
    max_eval: int = setting(400, "each reference task's evaluation size", count(1, MAX_SAMPLE))
    reference_data: dict[str, dict[str, str]] = setting(
        None, "your own reference tasks, {name: {train: source, test: source, ...}} (files, image "
        "folders, hub: datasets; probed besides reference_tasks)", reference_sources(),
        factory=dict, late=True,
    )  # fmt: skip

    def __post_init__(self) -> None:
        if (
            isinstance(self.reference_data, Mapping)
            and len(self.reference_data) > MAX_REFERENCE_DATA
        ):
            from safeadapt.errors import InvalidConfig

            raise InvalidConfig(
                f"safety 'forgetting' 'reference_data' lists {len(self.reference_data)} tasks, "
                f"above the limit of {MAX_REFERENCE_DATA}; give at most {MAX_REFERENCE_DATA}."
            )
        check_settings(self, "safety 'forgetting'")

    def local_sources(self) -> list[tuple[str, str, str, Path | None]]:
        """``(name, part, source, path)`` of every local source ``reference_data`` names: the
        file or folder it reads (a ``save_to_disk`` folder when written ``folder:split``), or
        None when there is none; ``hub:`` sources are left out (they load when probed)."""
        from safeadapt.data.disk import saved_folder

        out = []
        for name, entry in (self.reference_data or {}).items():
            for part in ("train", "test", "validation"):
                source = entry.get(part)
                if not source or source.startswith("hub:"):
                    continue
                path = Path(source).expanduser()
                out.append((name, part, source, path if path.exists() else saved_folder(source)[0]))
        return out


def reference_data_config(config) -> ForgettingConfig | None:
    """A study's forgetting settings, or None when the family does not run."""
    safety = getattr(config, "safety", None)
    return safety.families.get("forgetting") if safety is not None else None


@functools.lru_cache(maxsize=16)
def _reference_task(name: str, max_train: int, max_eval: int, seed: int):
    from safeadapt.data.builtin import load_builtin_task

    return load_builtin_task(name, seed=seed).subsample(max_train, max_eval, seed=seed)


@dataclass(frozen=True)
class ReferenceSource:
    """One ``reference_data`` entry: where the reference task's data are and which columns to
    read (as ``load_task`` takes them)."""

    train: str
    test: str
    validation: str | None = None
    text_column: str | None = None
    image_column: str | None = None
    label_column: str = "label"

    def load(self, name: str, seed: int):
        from safeadapt.data.sources import load_task

        text = self.text_column or (None if self.image_column else "text")
        return load_task(self.train, self.test, self.validation, name=name, seed=seed,
                         text_column=text, image_column=self.image_column,
                         label_column=self.label_column)  # fmt: skip


@functools.lru_cache(maxsize=16)
def _reference_data_task(name: str, source: ReferenceSource, max_train: int, max_eval: int,
                         seed: int):  # fmt: skip
    """A reference task of the user's own data (``reference_data``), subsampled like a built-in
    one; without ``validation`` a tenth of train is held out for the probe's C."""
    return source.load(name, seed).subsample(max_train, max_eval, seed=seed)


def _references(config: ForgettingConfig, task, seed: int):
    """``(name, loader)`` of every reference task: the built-in ones, then the user's own."""
    builtin = config.reference_tasks
    for name in default_reference_tasks(task) if builtin is None else builtin:
        yield name, functools.partial(_reference_task, name, config.max_train, config.max_eval,
                                      seed)  # fmt: skip
    for name, entry in (config.reference_data or {}).items():
        yield name, functools.partial(_reference_data_task, name, ReferenceSource(**entry),
                                      config.max_train, config.max_eval, seed)  # fmt: skip


def default_reference_tasks(task) -> tuple[str, ...]:
    """The modality's reference tasks other than the target task itself."""
    base = task.name.split("[")[0]
    return tuple(t for t in REFERENCE_TASKS[task.modality] if t != base)


def _probe(feats: Sequence[Tensor], ref) -> Tensor:
    """A plain linear probe's test logits on one reference task's features (train, val,
    test)."""
    from safeadapt.linear import fit_linear_probe

    train, val, test = feats
    head = fit_linear_probe(
        train,
        torch.from_numpy(ref.train.labels),
        val,
        torch.from_numpy(ref.val.labels),
        ref.num_classes,
    )
    return head.logits(test)


@dataclass(frozen=True)
class ProbeSizes:
    max_train: int
    max_eval: int


@dataclass(frozen=True)
class ForgettingResult(SafetyResult):
    """Per reference task, probe accuracy before / after and their mean change; the tasks
    skipped, and why (nothing when there is no pretrained backbone)."""

    tasks: dict[str, TaskForgetting] | None = absent()
    mean_delta: float | None = absent()
    sizes: ProbeSizes | None = absent()
    skipped: dict[str, str] | None = absent()


@register_family("forgetting", order=50)
class Forgetting(Family):
    title = "Concept forgetting: linear-probe accuracy on other tasks, after - before"
    Config = ForgettingConfig
    Result = ForgettingResult
    SCORES = {"forgetting": ("forgetting", True, "+.3f")}

    def measure(self, ctx: EvalContext, config: ForgettingConfig) -> ForgettingResult:
        from safeadapt.data.features import extract_features
        from safeadapt.metrics.forgetting import forgetting_report

        if not ctx.has_pretrained:
            return ForgettingResult()
        task = ctx.task
        before: dict[str, float] = {}
        after: dict[str, float] = {}
        skipped: dict[str, str] = {}
        for name, load in _references(config, task, ctx.seed):
            try:
                ref = load()
            except AssetMissing as err:
                skipped[name] = str(err)
                continue
            if ref.modality != task.modality:
                skipped[name] = f"modality {ref.modality} differs from the task's {task.modality}"
                continue
            parts = (ref.train, ref.val, ref.test)
            orig = [
                ctx.cache.get(ctx.pretrained(), s, show_progress=ctx.show_progress).features
                for s in parts
            ]
            logits_before = _probe(orig, ref)
            if ctx.frozen_backbone:
                logits_after = logits_before
            else:
                adapted = [
                    extract_features(
                        ctx.model.backbone, s, show_progress=ctx.show_progress
                    ).features
                    for s in parts
                ]
                logits_after = _probe(adapted, ref)
            labels = ref.test.labels
            ctx.add_rows(f"reference-before:{name}", labels, logits_before)
            ctx.add_rows(f"reference:{name}", labels, logits_after)
            before[name] = float((logits_before.argmax(1).numpy() == labels).mean())
            after[name] = float((logits_after.argmax(1).numpy() == labels).mean())
        report = forgetting_report(before, after) if before else None
        return ForgettingResult(
            tasks=report.tasks if report else {},
            mean_delta=report.mean_delta if report else None,
            sizes=ProbeSizes(config.max_train, config.max_eval),
            skipped=skipped or None,
        )

    def scores(self, result: ForgettingResult) -> dict[str, Score]:
        return self.declared({"forgetting": result.mean_delta})

    def intervals(self, results: list[ForgettingResult], outputs: Any) -> dict[str, tuple]:
        """Mean over reference tasks of probe accuracy after - before, paired on each task's test
        examples (before and after resampled together), stratified by task."""
        from safeadapt.metrics.intervals import stratified_bootstrap

        names = sorted(results[0].tasks or {})
        parts = {}
        for name in names:
            after = outputs.split(f"reference:{name}")
            before = outputs.split(f"reference-before:{name}")
            if after is None or before is None:
                return {}
            parts[name] = [after.correct.astype(float), before.correct.astype(float)]
        if not parts:
            return {}
        lo, hi = stratified_bootstrap(
            lambda d: float(np.mean([(a.mean() - b.mean()) for a, b in d.values()])), parts
        )
        return {"forgetting": (lo, hi, "paired bootstrap (stratified by task)")}

    def facts(self, result: ForgettingResult) -> list[str]:
        tasks = sorted(result.tasks or {})
        out = []
        if tasks:
            sizes = result.sizes
            out.append(
                "Concept-forgetting reference tasks: "
                + ", ".join(tasks)
                + f" (probes on <= {sizes and sizes.max_train} train, "
                f"<= {sizes and sizes.max_eval} val/test examples each)."
            )
        for name, why in (result.skipped or {}).items():
            out.append(f"Forgetting: reference task {name} skipped: {why}")
        return out

    def figure(
        self, results: dict[str, list[ForgettingResult]], summary: StudySummary | None = None
    ) -> bytes | None:
        """Concept forgetting per reference task: probe accuracy after minus before (0 = kept;
        mean over seeds)."""
        from safeadapt.safety.figures import bars, mean_over_seeds

        data = mean_over_seeds(results, lambda r: {k: v.delta for k, v in (r.tasks or {}).items()})
        return bars(data, "probe accuracy change", zero_line=True) if data else None
