"""The study's tables, written atomically: ``results.csv`` (one row per run and split, with
intervals and every family's run-level scores), ``variants.csv`` (every variant's scores with
their intervals) and ``predictions.parquet`` (every run's per-example outputs)."""

from __future__ import annotations

from typing import Any

from safeadapt.files import write_atomic, write_parquet_atomic
from safeadapt.study.plan import RunSpec


def write_results_csv(runs: list[dict[str, Any]], path, predictions=None) -> None:
    """One row per run and split (report and selection splits): accuracy with its Wilson 95 %
    interval (``accuracy_ci_low`` / ``accuracy_ci_high``, from the per-example outputs) and
    calibration, plus every safety family's run-level scores (``safeadapt.safety``)."""
    import pandas as pd

    from safeadapt.metrics.intervals import wilson_interval
    from safeadapt.safety import run_scores as family_scores

    predictions = predictions or {}
    rows = []
    for r in runs:
        run = r["run"]
        base = {
            "run_id": run["run_id"],
            "variant": run["variant"],
            "protocol": run["protocol"],
            "seed": run["seed"],
            "fit_seconds": r["fit_seconds"],
            "eval_seconds": r["eval_seconds"],
            "trainable_parameters": r["cost"]["trainable_parameters"],
            **family_scores(r.get("safety") or {}),
        }
        frame = predictions.get(run["run_id"])
        splits = {**r["metrics"], **(r.get("selection") or {})}
        for split, metrics in splits.items():
            row = {
                **base,
                "split": split,
                "role": "selection" if split in (r.get("selection") or {}) else "report",
            }
            row.update(metrics)
            if frame is not None:
                rows_ = frame[frame["split"] == split]
                if len(rows_):
                    k = int((rows_["pred"] == rows_["label"]).sum())
                    row["n"] = len(rows_)
                    row["accuracy_ci_low"], row["accuracy_ci_high"] = wilson_interval(k, len(rows_))
            rows.append(row)
    write_atomic(path, pd.DataFrame(rows).to_csv(index=False))


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


def write_variants_csv(summary: dict[str, Any], path) -> None:
    """Long table of every variant's scores: ``variant, score, value, ci_low, ci_high, ci_method,
    std, seeds, seed_ci_low, seed_ci_high``."""
    import pandas as pd

    rows = [
        {
            "variant": v["variant"],
            "protocol": v["protocol"],
            "score": key,
            "value": s["mean"],
            "ci_low": s.get("ci_low"),
            "ci_high": s.get("ci_high"),
            "ci_method": s.get("ci_method"),
            "std": s["std"],
            "seeds": s["n"],
            "seed_ci_low": s.get("seed_ci_low"),
            "seed_ci_high": s.get("seed_ci_high"),
        }
        for v in summary["variants"]
        for key, s in v["scores"].items()
    ]
    write_atomic(path, pd.DataFrame(rows).to_csv(index=False))
