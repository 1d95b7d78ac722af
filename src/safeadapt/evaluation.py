"""Evaluation: every metric on ID test and each OOD split, plus the safety suite.

``evaluate`` scores prediction metrics (registered in ``safeadapt.metrics``) per split.
``evaluate_safety`` adds temperature-scaled calibration, reliability data, OOD detection,
feature distortion against the pretrained backbone and adversarial robust accuracy.

Features are computed once per split: a frozen-backbone model (LP) reads them from the cache
(keyed by a hash of its actual weights); an adapted model's features are extracted once and give
both its logits and its feature distortion.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from safeadapt.backbones.base import Backbone
from safeadapt.config import require
from safeadapt.data.features import FeatureCache, extract_features
from safeadapt.data.task import Task
from safeadapt.metrics import METRICS
from safeadapt.model import Classifier

CALIBRATION = ("ece", "ece_adaptive", "nll", "brier")


def split_features(
    model: Classifier,
    task: Task,
    splits: Sequence[str],
    *,
    cache: FeatureCache | None = None,
    frozen_backbone: bool = False,
    show_progress: bool = False,
) -> dict[str, Tensor]:
    """The model's backbone features ``(N, D)`` on the named splits."""
    all_splits = task.splits()
    out = {}
    for name in splits:
        if frozen_backbone and cache is not None:
            out[name] = cache.get(model.backbone, all_splits[name], show_progress=show_progress)[
                "features"
            ]
        else:
            out[name] = extract_features(
                model.backbone, all_splits[name], show_progress=show_progress
            )["features"]
    return out


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
    feats = split_features(
        model,
        task,
        list(task.eval_splits()),
        cache=cache,
        frozen_backbone=frozen_backbone,
        show_progress=show_progress,
    )
    return score(head_logits(model, feats), task, metrics)


@dataclass(frozen=True)
class SafetyConfig:
    """What the safety suite runs and its budgets (attacks run on a capped, seeded sample)."""

    metrics: tuple[str, ...] = ("accuracy", *CALIBRATION)
    temperature_scaling: bool = True
    detection: bool = True
    distortion: bool = True
    adversarial: bool = True
    adv_method: str = "pgd"
    adv_eps: tuple[float, ...] | None = None  # default per modality (robustness.DEFAULT_EPS)
    adv_steps: int = 10
    adv_max_examples: int = 200
    seed: int = 0

    def __post_init__(self) -> None:
        for m in self.metrics:
            METRICS.get(m)
        require(
            self.adv_method in ("pgd", "fgsm"),
            f"safety 'adv_method' must be 'pgd' or 'fgsm'; got {self.adv_method!r}.",
        )
        require(
            isinstance(self.adv_steps, int) and self.adv_steps >= 1,
            f"safety 'adv_steps' must be an integer >= 1; got {self.adv_steps!r}.",
        )
        require(
            isinstance(self.adv_max_examples, int) and self.adv_max_examples >= 1,
            f"safety 'adv_max_examples' must be an integer >= 1; got {self.adv_max_examples!r}.",
        )
        if self.adv_eps is not None:
            require(all(e >= 0 for e in self.adv_eps), "safety 'adv_eps' values must be >= 0.")


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
    """The safety suite on ID test and every OOD split (see module docstring)."""
    from safeadapt.metrics.calibration import fit_temperature, reliability_data
    from safeadapt.metrics.detection import detection_report
    from safeadapt.metrics.distortion import distortion_report
    from safeadapt.metrics.robustness import DEFAULT_EPS, robust_accuracy

    config = config or SafetyConfig()
    cache = cache or FeatureCache()
    eval_names = list(task.eval_splits())
    names = ["val", *eval_names] if config.temperature_scaling else eval_names
    feats = split_features(
        model,
        task,
        names,
        cache=cache,
        frozen_backbone=frozen_backbone,
        show_progress=show_progress,
    )
    logits = head_logits(model, feats)
    eval_logits = {k: logits[k] for k in eval_names}
    out: dict[str, Any] = {"splits": score(eval_logits, task, config.metrics)}
    test_labels = torch.from_numpy(task.test.labels)
    out["reliability"] = {"test": reliability_data(eval_logits["test"], test_labels)}

    if config.temperature_scaling:
        t = fit_temperature(logits["val"], torch.from_numpy(task.val.labels))
        scaled = {k: v / t for k, v in eval_logits.items()}
        cal = [m for m in config.metrics if m in CALIBRATION]
        out["temperature"] = t
        out["splits_ts"] = score(scaled, task, cal)
        out["reliability"]["test_ts"] = reliability_data(scaled["test"], test_labels)

    if config.detection and task.ood:
        out["detection"] = detection_report(
            eval_logits["test"], {k: v for k, v in eval_logits.items() if k != "test"}
        )

    if config.distortion and pretrained is not None:
        base = (
            pretrained()
            if callable(pretrained) and not isinstance(pretrained, torch.nn.Module)
            else pretrained
        )
        splits = task.splits()
        original = {
            k: cache.get(base, splits[k], show_progress=show_progress)["features"]
            for k in eval_names
        }
        out["distortion"] = distortion_report(original, {k: feats[k] for k in eval_names})

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
    return out
