"""Optional experiment tracking: every run's parameters, metrics and record; the study's report.

- MLflow: ``tracking: {mlflow_uri: ...}`` (any tracking URI: ``sqlite:///mlruns.db``, an http
  server, or a ``file:`` store -- MLflow 3 needs ``MLFLOW_ALLOW_FILE_STORE=true`` for the latter).
- Weights & Biases: ``tracking: {wandb: {project: ..., mode: offline}}``; offline runs are written
  under ``<output>/wandb`` (or ``dir``) and uploaded later with ``wandb sync``.

Both may be on at once. Neither is a dependency: ``pip install mlflow`` / ``pip install wandb``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from safeadapt.errors import InvalidConfig
from safeadapt.results import RunRecord, StudySummary


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

    def log_run(self, spec, record: RunRecord, folder: Path) -> None:
        mlflow = self.mlflow
        with mlflow.start_run(run_name=spec.run_id):
            mlflow.set_tags({"variant": spec.variant, "protocol": spec.protocol, "key": spec.key})
            mlflow.log_params({k: str(v)[:500] for k, v in _params(spec, record).items()})
            mlflow.log_metrics(_metrics(record))
            mlflow.log_dict(json.loads(json.dumps(record.to_json(), default=float)), "record.json")

    def log_study(self, summary: StudySummary, report_path: Path | None) -> None:
        mlflow = self.mlflow
        with mlflow.start_run(run_name=f"{summary.study}-summary"):
            mlflow.set_tags({"recommended": summary.recommendation.variant})
            mlflow.log_dict(
                json.loads(json.dumps(summary.to_json(), default=float)), "summary.json"
            )
            if report_path is not None:
                mlflow.log_artifact(str(report_path))


def _params(spec, record: RunRecord) -> dict[str, Any]:
    params = {"seed": spec.seed, "protocol": spec.protocol}
    params.update({f"config.{k}": v for k, v in record.config.items()})
    return params


def _metrics(record: RunRecord) -> dict[str, float]:
    from safeadapt.study.variants import run_scores

    metrics: dict[str, float] = {}
    _flat("", {k: v for k, v in run_scores(record).items() if v is not None}, metrics)
    _flat("metrics", {k: m.to_json() for k, m in record.metrics.items()}, metrics)
    return metrics


class WandbTracker:
    """One W&B run per study run (grouped by study, tagged with its variant and protocol), and a
    summary run carrying the recommendation, the summary and the report."""

    def __init__(self, spec, study: str, output_dir: Path) -> None:
        try:
            import wandb
        except ImportError:
            raise InvalidConfig(
                "study 'tracking.wandb' is set but Weights & Biases is not installed: "
                "`pip install wandb` (or remove the tracking block)."
            ) from None
        self.wandb = wandb
        self.study = study
        folder = Path(spec.dir) if spec.dir else Path(output_dir)
        folder.mkdir(parents=True, exist_ok=True)
        self.settings = {
            "project": spec.project or study,
            "entity": spec.entity,
            "mode": spec.mode,
            "dir": str(folder),
            "group": study,
        }

    def _run(self, name: str, tags: list[str], config: dict[str, Any] | None = None):
        return self.wandb.init(
            name=name,
            tags=tags,
            config=config,
            reinit="create_new",
            settings=self.wandb.Settings(silent=True, console="off", save_code=False),
            **self.settings,
        )

    def log_run(self, spec, record: RunRecord, folder: Path) -> None:
        run = self._run(
            spec.run_id,
            sorted({spec.variant[:64], spec.protocol}),
            {"key": spec.key, **{k: str(v)[:500] for k, v in _params(spec, record).items()}},
        )
        try:
            run.summary.update(_metrics(record))
            if (folder / "record.json").is_file():
                run.save(str(folder / "record.json"), base_path=str(folder), policy="now")
        finally:
            run.finish()

    def log_study(self, summary: StudySummary, report_path: Path | None) -> None:
        rec = summary.recommendation.variant
        run = self._run(f"{self.study}-summary", ["summary", f"recommended:{rec}"[:64]])
        try:
            run.summary.update({"recommended": rec})
            if report_path is not None:
                run.save(str(report_path), base_path=str(Path(report_path).parent), policy="now")
        finally:
            run.finish()


class Trackers:
    """The study's trackers, each called in turn."""

    def __init__(self, trackers: list[Any]) -> None:
        self.trackers = trackers

    def log_run(self, spec, record: RunRecord, folder: Path) -> None:
        for tracker in self.trackers:
            tracker.log_run(spec, record, folder)

    def log_study(self, summary: StudySummary, report_path: Path | None) -> None:
        for tracker in self.trackers:
            tracker.log_study(summary, report_path)


def make_tracker(config) -> Trackers | None:
    tracking = config.tracking
    trackers: list[Any] = []
    if tracking.mlflow_uri:
        trackers.append(MLflowTracker(tracking.mlflow_uri, tracking.experiment or config.name))
    if tracking.wandb is not None:
        trackers.append(WandbTracker(tracking.wandb, config.name, config.output_dir))
    return Trackers(trackers) if trackers else None
