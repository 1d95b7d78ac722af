"""Evaluation: every metric on ID test and each OOD split, plus the safety suite.

``evaluate`` scores prediction metrics (registered in ``safeadapt.metrics``) per split.
``evaluate_safety`` adds temperature-scaled calibration, reliability data, OOD detection (each
OOD split and every far-OOD set), feature distortion against the pretrained backbone, adversarial
robust accuracy, corruption robustness, group metrics and concept forgetting on reference tasks.
``lp_accuracy_trend`` gives the linear-probe baseline for effective robustness.

Features are computed once per split: a frozen-backbone model (LP) reads them from the cache
(keyed by a hash of its actual weights); an adapted model's features are extracted once and give
both its logits and its feature distortion.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from safeadapt.backbones.base import Backbone
from safeadapt.config import positive_ints, require
from safeadapt.data.features import FeatureCache, extract_features, features_of
from safeadapt.data.task import Split, Task
from safeadapt.errors import AssetMissing
from safeadapt.metrics import METRICS
from safeadapt.model import Classifier

CALIBRATION = ("ece", "ece_adaptive", "nll", "brier")
REFERENCE_TASKS = {
    "text": ("vader-domain", "tweet-topic"),
    "image": ("mnist", "fashion-mnist", "digits"),
}


def split_features(
    model: Classifier,
    task: Task,
    splits: Sequence[str],
    *,
    cache: FeatureCache | None = None,
    frozen_backbone: bool = False,
    show_progress: bool = False,
) -> dict[str, Tensor]:
    """The model's backbone features ``(N, D)`` on the named splits (far-OOD sets included)."""
    all_splits = task.splits(far=True)
    return {
        name: features_of(
            model,
            all_splits[name],
            cache=cache,
            frozen_backbone=frozen_backbone,
            show_progress=show_progress,
        )
        for name in splits
    }


@torch.no_grad()
def head_logits(model: Classifier, features: dict[str, Tensor]) -> dict[str, Tensor]:
    w = model.head.weight.detach().float().cpu()
    b = model.head.bias.detach().float().cpu()
    return {k: v.float() @ w.T + b for k, v in features.items()}


def score(
    logits: dict[str, Tensor], task: Task, metrics: Sequence[str] = ("accuracy",)
) -> dict[str, dict[str, float]]:
    """``{split: {metric: value}}`` from precomputed logits."""
    fns = {m: METRICS.get(m) for m in metrics}
    splits = task.splits()
    return {
        name: {m: fn(lg, torch.from_numpy(splits[name].labels)) for m, fn in fns.items()}
        for name, lg in logits.items()
    }


def split_logits(
    model: Classifier,
    task: Task,
    names: Sequence[str],
    *,
    cache: FeatureCache | None = None,
    frozen_backbone: bool = False,
    show_progress: bool = False,
) -> dict[str, Tensor]:
    """The model's logits on the named splits of ``task`` (features cached when frozen)."""
    feats = split_features(
        model,
        task,
        list(names),
        cache=cache,
        frozen_backbone=frozen_backbone,
        show_progress=show_progress,
    )
    return head_logits(model, feats)


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
    logits = split_logits(
        model,
        task,
        list(task.eval_splits()),
        cache=cache,
        frozen_backbone=frozen_backbone,
        show_progress=show_progress,
    )
    return score(logits, task, metrics)


@dataclass(frozen=True)
class SafetyConfig:
    """What the safety suite runs and its budgets (attacks run on a capped, seeded sample)."""

    metrics: tuple[str, ...] = ("accuracy", *CALIBRATION)
    temperature_scaling: bool = True
    adversarial: bool = True
    adv_method: str = "pgd"
    adv_eps: tuple[float, ...] | None = None  # default per modality (robustness.DEFAULT_EPS)
    adv_steps: int = 10
    adv_max_examples: int = 200
    corruption: bool = True
    corruption_kinds: tuple[str, ...] | None = None  # default: every kind of the modality
    corruption_severities: tuple[int, ...] | None = None  # default: all (image 1-5, text 1-3)
    corruption_max_examples: int = 200
    forgetting: bool = True
    reference_tasks: tuple[str, ...] | None = None  # default per modality, minus the target
    reference_max_train: int = 600
    reference_max_eval: int = 400
    seed: int = 0
    # registered families (safeadapt.safety): {family: config or None (off)}; None = defaults
    families: Any = None

    def __post_init__(self) -> None:
        from safeadapt.safety import resolve_families

        object.__setattr__(self, "families", resolve_families(self.families))
        for m in self.metrics:
            METRICS.get(m)
        positive_ints(
            self,
            (
                "adv_steps",
                "adv_max_examples",
                "corruption_max_examples",
                "reference_max_train",
                "reference_max_eval",
            ),
            "safety",
        )
        if self.reference_tasks is not None:
            from safeadapt.data.builtin import TASKS

            for t in self.reference_tasks:
                TASKS.get(t)
        require(
            self.adv_method in ("pgd", "fgsm"),
            f"safety 'adv_method' must be 'pgd' or 'fgsm'; got {self.adv_method!r}.",
        )
        if self.adv_eps is not None:
            require(all(e >= 0 for e in self.adv_eps), "safety 'adv_eps' values must be >= 0.")
        from safeadapt.metrics.corruption import IMAGE_CORRUPTIONS, SEVERITIES, TEXT_CORRUPTIONS

        known = sorted({*IMAGE_CORRUPTIONS.names(), *TEXT_CORRUPTIONS.names()})
        for kind in self.corruption_kinds or ():
            require(
                kind in known,
                f"safety 'corruption_kinds': unknown corruption {kind!r}; known: {', '.join(known)}.",
            )
        for sev in self.corruption_severities or ():
            require(
                sev in SEVERITIES["image"],
                f"safety 'corruption_severities' must be integers in 1..5 (text: 1..3); got {sev!r}.",
            )


def evaluate_safety(
    model: Classifier,
    task: Task,
    pretrained: Callable[[], Backbone] | Backbone | None = None,
    *,
    cache: FeatureCache | None = None,
    frozen_backbone: bool = False,
    config: SafetyConfig | None = None,
    show_progress: bool = False,
) -> dict[str, Any]:
    """The safety suite on ID test and every OOD split (see module docstring).

    Also scores the selection splits (``val``, ``ood-val:*``) under ``"selection"`` -- the only
    numbers a choice may use -- and returns every labelled split's logits under ``"logits"``
    (for the per-example predictions)."""
    from safeadapt.metrics.calibration import fit_temperature, reliability_data
    from safeadapt.metrics.robustness import DEFAULT_EPS, robust_accuracy
    from safeadapt.safety import EvalContext, measure_families

    config = config or SafetyConfig()
    cache = cache or FeatureCache()
    eval_names = list(task.eval_splits())
    selection_names = list(task.selection_splits())
    names = [*selection_names, *eval_names]
    ctx = EvalContext(
        model,
        task,
        pretrained=pretrained,
        cache=cache,
        frozen_backbone=frozen_backbone,
        seed=config.seed,
        show_progress=show_progress,
    )

    logits = {n: ctx.logits(n) for n in names}
    eval_logits = {k: logits[k] for k in eval_names}
    out: dict[str, Any] = {
        "splits": score(eval_logits, task, config.metrics),
        "selection": score({k: logits[k] for k in selection_names}, task, config.metrics),
        "logits": {k: logits[k] for k in [*selection_names, *eval_names]},
    }
    # per-example values beside the logits (popped into predictions.parquet, not the record)
    per_example: dict[str, Any] = {}
    out["per_example"] = per_example
    test_labels = torch.from_numpy(task.test.labels)
    out["reliability"] = {"test": reliability_data(eval_logits["test"], test_labels)}

    if config.temperature_scaling:
        t = fit_temperature(logits["val"], torch.from_numpy(task.val.labels))
        scaled = {k: v / t for k, v in eval_logits.items()}
        cal = [m for m in config.metrics if m in CALIBRATION]
        out["temperature"] = t
        out["splits_ts"] = score(scaled, task, cal)
        out["reliability"]["test_ts"] = reliability_data(scaled["test"], test_labels)

    base: Backbone | None = None
    if pretrained is not None and config.forgetting:
        base = ctx.pretrained()

    if config.adversarial:
        eps = config.adv_eps or DEFAULT_EPS[task.modality]
        sample = task.test.sample(config.adv_max_examples, config.seed)
        out["adversarial"] = {
            "method": config.adv_method,
            "space": "pixel [0,1]"
            if task.modality == "image"
            else "token embeddings (eps x embedding std)",
            "steps": config.adv_steps if config.adv_method == "pgd" else 1,
            "n": len(sample),
            "accuracy": robust_accuracy(
                model,
                sample,
                eps,
                steps=config.adv_steps,
                method=config.adv_method,
                seed=config.seed,
            ),
        }

    if config.corruption:
        out["corruption"] = corruption_robustness(
            model,
            task,
            config,
            cache=cache,
            frozen_backbone=frozen_backbone,
            show_progress=show_progress,
        )

    if config.forgetting and base is not None:
        out["forgetting"] = concept_forgetting(
            model,
            base,
            task,
            config,
            cache=cache,
            frozen_backbone=frozen_backbone,
            show_progress=show_progress,
        )
        per_example["reference"] = out["forgetting"].pop("logits")
    out.update(measure_families(ctx, config.families or {}))
    per_example["columns"] = ctx.columns
    out["backbone_passes"] = dict(ctx.passes)  # per split: 1 for an adapted model, 0 when cached
    return out


def corruption_robustness(
    model: Classifier,
    task: Task,
    config: SafetyConfig,
    *,
    cache: FeatureCache | None = None,
    frozen_backbone: bool = False,
    show_progress: bool = False,
) -> dict[str, Any]:
    """Accuracy on a capped, seeded ID-test sample under every corruption kind and severity."""
    from safeadapt.metrics.corruption import (
        SEVERITIES,
        corrupt,
        corruption_summary,
        corruptions_for,
    )

    kinds = config.corruption_kinds or tuple(corruptions_for(task.modality).names())
    severities = config.corruption_severities or SEVERITIES[task.modality]
    sample = task.test.sample(config.corruption_max_examples, config.seed)
    labels = torch.from_numpy(sample.labels)

    def accuracy(split: Split) -> float:
        feats = features_of(
            model, split, cache=cache, frozen_backbone=frozen_backbone, show_progress=show_progress
        )
        return float((head_logits(model, {"x": feats})["x"].argmax(1) == labels).float().mean())

    clean = accuracy(sample)
    acc: dict[str, dict[int, float]] = {}
    for kind in kinds:
        acc[kind] = {}
        for sev in severities:
            inputs = corrupt(sample.inputs, task.modality, kind, sev, seed=config.seed)
            acc[kind][sev] = accuracy(Split(f"{kind}-{sev}", inputs, sample.labels))
    return {
        "n": len(sample),
        "accuracy": {k: {str(s): a for s, a in v.items()} for k, v in acc.items()},
        **corruption_summary(clean, acc),
    }


@functools.lru_cache(maxsize=16)
def _reference_task(name: str, max_train: int, max_eval: int, seed: int) -> Task:
    from safeadapt.data.builtin import load_builtin_task

    return load_builtin_task(name, seed=seed).subsample(max_train, max_eval, seed=seed)


def default_reference_tasks(task: Task) -> tuple[str, ...]:
    """The modality's reference tasks other than the target task itself."""
    base = task.name.split("[")[0]
    return tuple(t for t in REFERENCE_TASKS[task.modality] if t != base)


def concept_forgetting(
    model: Classifier,
    pretrained: Backbone,
    task: Task,
    config: SafetyConfig,
    *,
    cache: FeatureCache | None = None,
    frozen_backbone: bool = False,
    show_progress: bool = False,
) -> dict[str, Any]:
    """Linear-probe accuracy on reference tasks with the adapted backbone minus the original's.

    A frozen backbone (LP) has the original features by construction: its delta is exactly 0 and
    nothing is recomputed. Reference tasks whose data are not installed are skipped with a note.
    """
    from safeadapt.metrics.forgetting import forgetting_report
    from safeadapt.protocols.lp import fit_linear_probe

    cache = cache or FeatureCache()
    names = config.reference_tasks or default_reference_tasks(task)
    before: dict[str, float] = {}
    after: dict[str, float] = {}
    skipped: dict[str, str] = {}

    logits: dict[str, tuple[np.ndarray, Tensor]] = {}  # per-example outputs, for intervals

    def probe(feats: dict[str, Tensor], ref: Task, key: str) -> float:
        head = fit_linear_probe(
            feats["train"],
            torch.from_numpy(ref.train.labels),
            feats["val"],
            torch.from_numpy(ref.val.labels),
            ref.num_classes,
        )
        test_logits = head.logits(feats["test"])
        logits[key] = (ref.test.labels, test_logits)
        pred = test_logits.argmax(1)
        return float((pred == torch.from_numpy(ref.test.labels)).float().mean())

    for name in names:
        try:
            ref = _reference_task(
                name, config.reference_max_train, config.reference_max_eval, config.seed
            )
        except AssetMissing as err:
            skipped[name] = str(err)
            continue
        if ref.modality != task.modality:
            skipped[name] = f"modality {ref.modality} differs from the task's {task.modality}"
            continue
        parts = {"train": ref.train, "val": ref.val, "test": ref.test}
        orig = {
            k: cache.get(pretrained, s, show_progress=show_progress)["features"]
            for k, s in parts.items()
        }
        before[name] = probe(orig, ref, f"reference-before:{name}")
        if frozen_backbone:
            after[name] = before[name]
            logits[f"reference:{name}"] = logits[f"reference-before:{name}"]
        else:
            adapted = {
                k: extract_features(model.backbone, s, show_progress=show_progress)["features"]
                for k, s in parts.items()
            }
            after[name] = probe(adapted, ref, f"reference:{name}")
    out: dict[str, Any] = forgetting_report(before, after) if before else {"tasks": {}}
    out["logits"] = logits
    out["sizes"] = {"max_train": config.reference_max_train, "max_eval": config.reference_max_eval}
    if skipped:
        out["skipped"] = skipped
    return out


def lp_accuracy_trend(
    task: Task,
    backbone: Backbone,
    cache: FeatureCache | None = None,
    c_grid: Sequence[float] = (1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 1.0),
    show_progress: bool = False,
) -> list[dict[str, float]]:
    """(ID test, OOD) accuracy of linear probes over ``c_grid``: the baseline family whose
    probit-linear trend defines effective robustness (one point per C, from cached features)."""
    from safeadapt.protocols.lp import LPConfig, fit_linear_probe

    cache = cache or FeatureCache()
    splits = task.splits()
    names = ["train", "val", *task.eval_splits()]
    feats = {
        n: cache.get(backbone, splits[n], show_progress=show_progress)["features"] for n in names
    }
    points = []
    for c in c_grid:
        head = fit_linear_probe(
            feats["train"],
            torch.from_numpy(task.train.labels),
            feats["val"],
            torch.from_numpy(task.val.labels),
            task.num_classes,
            LPConfig(c_grid=(c,)),
        )
        point = {"C": float(c)}
        for n in task.eval_splits():
            pred = head.logits(feats[n]).argmax(1)
            point[n] = float((pred == torch.from_numpy(splits[n].labels)).float().mean())
        points.append(point)
    return points
