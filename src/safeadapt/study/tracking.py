"""Optional MLflow tracking: every run's parameters, metrics and record; the study's report.

Enabled by ``tracking: {mlflow_uri: ...}`` in the study (any tracking URI: ``sqlite:///mlruns.db``,
an http server, or a ``file:`` store -- MLflow 3 needs ``MLFLOW_ALLOW_FILE_STORE=true`` for the
latter). MLflow is not a dependency: ``pip install mlflow`` to use it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from safeadapt.errors import InvalidConfig


def _flat(prefix: str, value: Any, out: dict[str, float]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flat(f"{prefix}.{k}" if prefix else str(k), v, out)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        if math.isfinite(float(value)):
            out[prefix.replace(":", "_").replace("/", "_")] = float(value)


class MLflowTracker:
    def __init__(self, uri: str, experiment: str) -> None:
        try:
            import mlflow
        except ImportError:
            raise InvalidConfig(
                "study 'tracking.mlflow_uri' is set but MLflow is not installed: "
                "`pip install mlflow` (or remove the tracking block)."
            ) from None
        self.mlflow = mlflow
        mlflow.set_tracking_uri(uri)
        mlflow.set_experiment(experiment)

    def log_run(self, spec, record: dict[str, Any], folder: Path) -> None:
        from safeadapt.study.recommend import run_scores

        mlflow = self.mlflow
        with mlflow.start_run(run_name=spec.run_id):
            mlflow.set_tags({"variant": spec.variant, "protocol": spec.protocol, "key": spec.key})
            params = {"seed": spec.seed, "protocol": spec.protocol}
            params.update({f"config.{k}": v for k, v in record.get("config", {}).items()})
            mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
            metrics: dict[str, float] = {}
            _flat("", {k: v for k, v in run_scores(record).items() if v is not None}, metrics)
            _flat("metrics", record["metrics"], metrics)
            mlflow.log_metrics(metrics)
            mlflow.log_dict(json.loads(json.dumps(record, default=float)), "record.json")

    def log_study(self, summary: dict[str, Any], report_path: Path | None) -> None:
        mlflow = self.mlflow
        with mlflow.start_run(run_name=f"{summary['study']}-summary"):
            mlflow.set_tags({"recommended": summary["recommendation"]["variant"]})
            mlflow.log_dict(json.loads(json.dumps(summary, default=float)), "summary.json")
            if report_path is not None:
                mlflow.log_artifact(str(report_path))


def make_tracker(config) -> MLflowTracker | None:
    if not config.tracking.mlflow_uri:
        return None
    return MLflowTracker(config.tracking.mlflow_uri, config.tracking.experiment or config.name)
