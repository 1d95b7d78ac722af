"""The cheap first study (``--quick``) and what it predicts: the same study on a small stratified
sample, and the full study's duration estimated from it and a half-size twin (each run's time
split into parts, each part a fixed cost plus a cost per example, ``fit_line``). The quick and
half-size studies (``StudyResult``) are run by ``safeadapt.study.runner.run_study``."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from safeadapt.errors import SafeAdaptError
from safeadapt.results import RunRecord
from safeadapt.study.config import StudyConfig
from safeadapt.study.plan import expand_runs

QUICK_TRAIN = 200


QUICK_EVAL = 100


def quick_config(config: StudyConfig, scale: int = 1) -> StudyConfig:
    """The same study on a small stratified sample (``1 / scale`` of the quick sizes), one seed,
    written to ``<output>/quick`` (``<output>/quick-1of<scale>`` for the smaller sample)."""
    task = dataclasses.replace(
        config.task,
        max_train=min(config.task.max_train or QUICK_TRAIN, QUICK_TRAIN) // scale,
        max_eval=min(config.task.max_eval or QUICK_EVAL, QUICK_EVAL) // scale,
    )
    folder = "quick" if scale == 1 else f"quick-1of{scale}"
    return dataclasses.replace(
        config,
        task=task,
        seeds=config.seeds[:1],
        output=str(config.output_dir / folder),
        tracking=dataclasses.replace(config.tracking, mlflow_uri=None, wandb=None),
    )


def fit_line(x1: float, y1: float, x2: float, y2: float) -> tuple[float, float]:
    """``(fixed, per_unit)`` of ``y = fixed + per_unit * x`` through two measurements, the
    larger ``x1`` trusted more: the slope is kept in ``[0, y1 / x1]``, so neither the fixed cost
    nor the per-unit cost is negative (timing noise can tilt a line through two points either
    way). One point (``x1 == x2``): proportional, no fixed cost."""
    if x1 <= 0:
        return max(0.0, y1), 0.0
    if x1 == x2:
        return 0.0, max(0.0, y1) / x1
    slope = min(max((y1 - y2) / (x1 - x2), 0.0), max(0.0, y1) / x1)
    return max(0.0, y1) - slope * x1, slope


def task_sizes(task) -> tuple[int, int, int]:
    """Training, evaluation (every evaluation split) and ID-test examples."""
    return len(task.train), sum(len(s) for s in task.eval_splits().values()), len(task.test)


def cost_parts(
    record: RunRecord, sizes: tuple[int, int, int], caps: dict[str, int | None]
) -> dict[str, tuple[float, float]]:
    """``{part: (examples it scales with, seconds)}`` of one run: the fit (training examples),
    each safety family (its own sample: the ID test capped at the family's ``max_examples``, or
    the evaluation examples) and the rest of the evaluation (evaluation examples)."""
    n_train, n_eval, n_test = sizes
    families = record.safety.get("family_seconds") or {}
    rest = max(0.0, record.eval_seconds - sum(families.values()))
    parts = {"fit": (float(n_train), record.fit_seconds), "eval": (float(n_eval), rest)}
    for name, seconds in families.items():
        cap = caps.get(name)
        parts[f"family:{name}"] = (float(min(n_test, cap) if cap else n_eval), seconds)
    return parts


@dataclass(frozen=True)
class Estimate:
    """How long the full study should take (``--quick``): ``full_seconds`` of which
    ``fixed_seconds`` do not grow with the data, from a quick study of ``quick_seconds``;
    ``two_sizes``: fitted on the quick study and its half-size twin (else proportional);
    ``ran_in_full``: the data fit in the quick sample, so the study itself ran and
    ``full_seconds`` is its measured time."""

    full_seconds: float
    runs: int
    fixed_seconds: float = 0.0
    quick_seconds: float = 0.0
    train_ratio: float = 1.0
    eval_ratio: float = 1.0
    two_sizes: bool = False
    ran_in_full: bool = False


def estimate_full(config: StudyConfig, quick: Any, smaller: Any = None) -> Estimate | None:
    """Seconds the full study should take. Each run's time is split into parts -- the fit, each
    safety family, the rest of the evaluation -- and each part is a fixed cost plus a cost per
    example of what it scales with (``cost_parts``: a family on a capped sample stops growing
    at its cap), fitted on the quick study and its half-size twin (``fit_line``); the study's own
    time beyond its runs (loading, pre-flight, report) likewise on the training size. Times the
    number of seeds. Without ``smaller``: proportional (fixed costs scaled up with the data,
    which over-estimates)."""
    try:
        full_task = config.task.load()
    except SafeAdaptError:
        return None
    full = task_sizes(full_task)
    q_sizes = task_sizes(quick.config.task.load())
    s_sizes = task_sizes(smaller.config.task.load()) if smaller else q_sizes
    families = config.safety.families if config.safety is not None else {}
    caps = {name: getattr(cfg, "max_examples", None) for name, cfg in families.items()}
    small = {r.variant: r for r in smaller.runs} if smaller else {}
    seconds, fixed = 0.0, 0.0
    for r in quick.runs:
        parts = cost_parts(r, q_sizes, caps)
        twin = r.variant in small
        twin_parts = cost_parts(small[r.variant], s_sizes, caps) if twin else parts
        target = cost_parts(r, full, caps)  # the sizes each part scales with, at full size
        for part, (x, y) in parts.items():
            x2, y2 = twin_parts.get(part, (x, y))
            a, b = fit_line(x, y, x2, y2)
            seconds += (a + b * target[part][0]) * len(config.seeds)
            fixed += a * len(config.seeds)
    if smaller is not None and quick.ran and smaller.ran:  # the study's time outside its runs

        def outside(result: Any) -> float:
            inside = sum(r.wall_seconds for r in result.runs)
            return max(0.0, result.seconds - inside)

        a, b = fit_line(q_sizes[0], outside(quick), s_sizes[0], outside(smaller))
        seconds += a + b * full[0]
        fixed += a
    return Estimate(
        full_seconds=seconds,
        runs=len(expand_runs(config, full_task.modality)),
        fixed_seconds=fixed,
        quick_seconds=quick.seconds + (smaller.seconds if smaller else 0.0),
        train_ratio=full[0] / q_sizes[0],
        eval_ratio=full[1] / max(1, q_sizes[1]),
        two_sizes=smaller is not None,
    )
