"""One run = one protocol, one seed, on one task: fit, evaluate, time; a typed
:class:`~safeadapt.results.RunRecord` out."""

from __future__ import annotations

import os
import platform
import random
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from safeadapt.backbones.base import Backbone
from safeadapt.config import record_form
from safeadapt.data.features import FeatureCache
from safeadapt.data.task import Task
from safeadapt.evaluation import EvalContext, PerExample, score_splits
from safeadapt.metrics.cost import CostMeter, trainable_parameters
from safeadapt.protocols import FitContext, FitResult, Protocol
from safeadapt.results import Cost, CostPart, RunRecord, SplitMetrics
from safeadapt.safety import SafetyConfig
from safeadapt.safety.suite import run_families


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def environment() -> dict[str, Any]:
    import safeadapt

    return {
        "safeadapt": safeadapt.__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "cuda": torch.cuda.is_available(),
        "host": platform.node(),  # where the run was computed (a cluster has many)
        "pid": os.getpid(),
    }


# scored on every split with or without the safety suite (the suite's default metrics)
PREDICTION_METRICS = ("accuracy", "ece", "ece_adaptive", "nll", "brier")


def run_protocol(
    protocol: Protocol,
    task: Task,
    backbone_factory: Callable[[], Backbone],
    seed: int = 0,
    *,
    cache: FeatureCache | None = None,
    metrics: Sequence[str] = PREDICTION_METRICS,
    safety: SafetyConfig | None = None,
    device: str = "auto",
    show_progress: bool = True,
) -> tuple[RunRecord, FitResult]:
    """Fit ``protocol`` on ``task`` with ``seed`` and evaluate it on ID test and every OOD split.

    With ``safety`` (a :class:`SafetyConfig`), the safety suite runs too: every configured
    family of ``safeadapt.safety``, against a fresh pretrained backbone where one is needed.
    """
    cache = cache or FeatureCache()
    seed_everything(seed)
    ctx = FitContext(task, backbone_factory, seed, cache, device, show_progress)
    with CostMeter() as fit_cost:
        result = protocol.fit(ctx)
    safety_out: dict[str, Any] = {}
    per_example = PerExample()
    with CostMeter() as eval_cost:
        engine = EvalContext(
            result.model,
            task,
            pretrained=backbone_factory,
            cache=cache,
            frozen_backbone=result.frozen_backbone,
            seed=safety.seed if safety is not None else 0,
            show_progress=show_progress,
        )
        logits, scores, selection = score_splits(
            engine, safety.metrics if safety is not None else metrics
        )
        if safety is not None:
            safety_out = run_families(engine, safety)
            per_example = engine.per_example()
    _check_finite(logits, protocol)
    n_eval = sum(len(s) for s in task.eval_splits().values())
    trainable = result.info.get("trainable_parameters", trainable_parameters(result.model))
    record = RunRecord(
        protocol=protocol.name,
        seed=seed,
        metrics={k: SplitMetrics(v) for k, v in scores.items()},
        selection={k: SplitMetrics(v) for k, v in selection.items()},
        fit_seconds=fit_cost.seconds,
        eval_seconds=eval_cost.seconds,
        config=record_form(protocol.config),
        info=result.info,
        safety=safety_out,
        cost=Cost(
            CostPart(fit_cost.result(len(task.train))),
            CostPart(eval_cost.result(n_eval)),
            int(trainable),
        ),
        predictions=predictions_table(task, logits, per_example),
    )
    return record, result


def _check_finite(logits: dict[str, Any], protocol: Protocol) -> None:
    """A model whose outputs are NaN / inf is not a result: raise before anything is stored,
    so a rerun does not reuse it."""
    from safeadapt.errors import TrainingDiverged

    for split, values in logits.items():
        array = np.asarray(values.detach().cpu() if hasattr(values, "detach") else values)
        if not np.isfinite(array).all():
            lr = getattr(protocol.config, "lr", None)
            raise TrainingDiverged(
                f"protocol {protocol.name!r} gives non-finite outputs on split {split!r}: "
                "training diverged"
                + (f"; lower 'lr' (now {lr})" if lr is not None else "")
                + ". Nothing of this run was stored."
            )


def predictions_table(task: Task, logits: dict[str, Tensor], per_example: PerExample | None = None):
    """Per-example outputs of every labelled split as a pandas frame: ``split``, ``index`` (row in
    the split), ``label``, ``pred``, ``probs`` (class probabilities), ``group`` and, for text,
    ``text``. The run's reported accuracies are recomputable from it.

    With ``per_example`` (from the safety suite): the families' per-example columns (e.g.
    ``feature_shift``, the L2 distance of each example's features from the pretrained
    backbone's) and their extra rows (e.g. concept forgetting's probes on each reference task's
    test split, ``reference:<task>`` and ``reference-before:<task>``)."""
    import pandas as pd

    per_example = per_example or PerExample()
    splits = task.splits()
    columns = per_example.columns

    def frame_of(name: str, labels: np.ndarray, lg: Tensor) -> pd.DataFrame:
        probs = lg.double().softmax(1).float().numpy()
        return pd.DataFrame(
            {
                "split": name,
                "index": np.arange(len(labels)),
                "label": labels,
                "pred": probs.argmax(1),
                "probs": list(probs),
            }
        )

    frames = []
    for name, lg in logits.items():
        split = splits[name]
        extra = {"source": split.sources.astype(str)}
        if split.groups is not None:
            extra.update(group=split.groups.astype(str))
        if not isinstance(split.inputs, np.ndarray):
            extra.update(text=list(split.inputs))
        extra.update({c: by_split[name] for c, by_split in columns.items() if name in by_split})
        frames.append(frame_of(name, split.labels, lg).assign(**extra))
    for name, (labels, lg) in per_example.rows.items():
        frames.append(frame_of(name, labels, lg))
    return pd.concat(frames, ignore_index=True)
