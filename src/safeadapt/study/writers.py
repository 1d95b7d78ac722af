"""The study's tables, written atomically: ``results.csv`` (one row per run and split, with
intervals and every family's run-level scores; ``runs.csv`` and ``splits.csv`` hold the same
without repeating the run's columns), ``variants.csv`` (every variant's scores with
their intervals) and ``predictions.parquet`` (every run's per-example outputs)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from safeadapt.files import write_atomic, write_parquet_atomic
from safeadapt.results import RunRecord, StudySummary
from safeadapt.results.predictions import RunPredictions
from safeadapt.study.plan import RunSpec


def write_results_csv(
    runs: Sequence[RunRecord], path, predictions: Mapping[str, RunPredictions | None] | None = None
) -> None:
    """``results.csv``: one row per run and split (report and selection splits): accuracy with
    its Wilson 95 % interval (``accuracy_ci_low`` / ``accuracy_ci_high``, from the per-example
    outputs) and every prediction metric, plus the run's columns (every safety family's
    run-level scores, ``safeadapt.safety``) repeated on each of its rows. Beside it, the same
    without repetition: ``runs.csv`` (the run's columns, once) and ``splits.csv`` (the split
    rows with ``run_id``)."""
    import pandas as pd

    run_rows, split_rows = _tables(runs, predictions or {})
    by_run = {row["run_id"]: row for row in run_rows}
    joined = [{**by_run[row["run_id"]], **row} for row in split_rows]
    folder = Path(path).parent
    write_atomic(folder / "runs.csv", pd.DataFrame(run_rows).to_csv(index=False))
    write_atomic(folder / "splits.csv", pd.DataFrame(split_rows).to_csv(index=False))
    write_atomic(path, pd.DataFrame(joined).to_csv(index=False))


def _tables(
    runs: Sequence[RunRecord], predictions: Mapping[str, RunPredictions | None]
) -> tuple[list[dict], list[dict]]:
    """The rows of ``runs.csv`` and of ``splits.csv``."""
    from safeadapt.metrics.intervals import wilson_interval
    from safeadapt.safety import run_scores as family_scores

    run_rows, split_rows = [], []
    for r in runs:
        run = r.run
        base = {
            "run_id": r.run_id,
            "variant": r.variant,
            "protocol": run.protocol if run else r.protocol,
            "seed": r.seed,
            "fit_seconds": r.fit_seconds,
            "eval_seconds": r.eval_seconds,
            "trainable_parameters": r.cost.trainable_parameters if r.cost else None,
            **family_scores(r.safety),
        }
        run_rows.append(base)
        outputs = predictions.get(r.run_id)
        splits = {**r.metrics, **r.selection}
        for split, metrics in splits.items():
            row = {
                "run_id": r.run_id,
                "split": split,
                "role": "selection" if split in r.selection else "report",
            }
            row.update(metrics.values)
            part = outputs.splits.get(split) if outputs is not None else None
            if part is not None and len(part):
                lo, hi = wilson_interval(int(part.correct.sum()), len(part))
                row.update(n=len(part), accuracy_ci_low=lo, accuracy_ci_high=hi)
            split_rows.append(row)
    return run_rows, split_rows


def write_predictions(specs: list[RunSpec], predictions: dict[str, Any], path) -> None:
    """The study's combined per-example table: every run's predictions with its run id,
    variant and seed in front."""
    import pandas as pd

    frames = []
    for spec in specs:
        frame = predictions.get(spec.run_id)
        if frame is not None:
            frames.append(frame.assign(run_id=spec.run_id, variant=spec.variant, seed=spec.seed))
    if frames:
        write_parquet_atomic(path, pd.concat(frames, ignore_index=True))


def write_variants_csv(summary: StudySummary, path) -> None:
    """Long table of every variant's scores: ``variant, score, value, ci_low, ci_high, ci_method,
    std, seeds, seed_ci_low, seed_ci_high``."""
    import pandas as pd

    rows = [
        {
            "variant": v.variant,
            "protocol": v.protocol,
            "score": key,
            "value": s.mean,
            "ci_low": s.ci_low,
            "ci_high": s.ci_high,
            "ci_method": s.ci_method,
            "std": s.std,
            "seeds": s.n,
            "seed_ci_low": s.seed_ci_low,
            "seed_ci_high": s.seed_ci_high,
        }
        for v in summary.variants
        for key, s in v.scores.items()
    ]
    write_atomic(path, pd.DataFrame(rows).to_csv(index=False))
