"""Optional experiment tracking: every run's parameters, metrics and record -- the runs computed
now and the ones reused from an earlier call, each logged once -- nested under the study's own
run, which carries the summary's scores, the verdicts and the report.

- MLflow: ``tracking: {mlflow: {uri: ..., experiment: ...}}`` or ``tracking: {mlflow_uri: ...}``
  (any tracking URI: ``sqlite:///mlruns.db``, an http server, or a ``file:`` store -- MLflow 3
  needs ``MLFLOW_ALLOW_FILE_STORE=true`` for the latter). Each run is a child of the study's run
  (``mlflow.parentRunId``) tagged with its content key, so a second call finds it and does not
  log it again. With a local store (``sqlite:``, ``file:``) a new experiment keeps its artifacts
  under ``<output>/mlflow-artifacts``, not in the working folder; a server keeps its own.
- Weights & Biases: ``tracking: {wandb: {project: ..., mode: offline}}``; runs are grouped by the
  study (``group``), the logged keys are remembered in ``<dir>/safeadapt-logged.json``; offline
  runs are written under ``<output>/wandb`` (or ``dir``) and uploaded later with ``wandb sync``.

Both may be on at once. Neither is a dependency: ``pip install mlflow`` / ``pip install wandb``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from safeadapt.errors import InvalidConfig
from safeadapt.files import write_atomic
from safeadapt.results import RunRecord, StudySummary

KEY_TAG = "safeadapt.key"  # a run's content key: logged once per experiment
STUDY_TAG = "safeadapt.study"


def _flat(prefix: str, value: Any, out: dict[str, float]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flat(f"{prefix}.{k}" if prefix else str(k), v, out)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        if math.isfinite(float(value)):
            out[prefix.replace(":", "_").replace("/", "_")] = float(value)


def summary_metrics(summary: StudySummary) -> dict[str, float]:
    """The study run's numbers: every variant's mean of every score (``<variant>.<score>``) and
    the pick's again as ``pick.<score>``."""
    out: dict[str, float] = {}
    for v in summary.variants:
        means = {k: s.mean for k, s in v.scores.items()}
        _flat(v.variant.replace("[", "_").replace("]", "").replace("=", "-"), means, out)
        if v.variant == summary.recommendation.variant:
            _flat("pick", means, out)
    return out


def summary_tags(summary: StudySummary) -> dict[str, str]:
    """The verdicts as tags: the pick, the rule that chose it and, per compared variant and test
    metric, whether the pick is better, worse or not distinguishable."""
    rec = summary.recommendation
    tags = {"recommended": rec.variant, "selection": rec.selection, STUDY_TAG: summary.study}
    for c in rec.pairwise:
        metric = "id" if c.metric.startswith("ID") else "ood"
        tags[f"verdict.{metric}.{c.other}"[:250]] = c.verdict
    return tags


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


class MLflowTracker:
    def __init__(self, uri: str, experiment: str, study: str, output_dir: Path) -> None:
        try:
            import mlflow
        except ImportError:
            raise InvalidConfig(
                "study 'tracking.mlflow_uri' is set but MLflow is not installed: "
                "`pip install mlflow` (or remove the tracking block)."
            ) from None
        self.mlflow = mlflow
        self.client = mlflow.MlflowClient(tracking_uri=uri)
        self.study = study
        found = self.client.get_experiment_by_name(experiment)
        if found is None:
            local = uri.startswith(("sqlite:", "file:")) or "://" not in uri
            where = (Path(output_dir).resolve() / "mlflow-artifacts").as_uri() if local else None
            self.experiment_id = self.client.create_experiment(experiment, where)
        else:
            self.experiment_id = found.experiment_id
        self.parent = self._study_run()
        self.logged = {
            r.data.tags[KEY_TAG]
            for r in self.client.search_runs(
                [self.experiment_id], f"tags.`{STUDY_TAG}` = '{_quote(study)}'", max_results=50_000
            )
            if KEY_TAG in r.data.tags
        }

    def _study_run(self) -> str:
        """The study's own run: the one an earlier call made, or a new one."""
        query = f"tags.`{STUDY_TAG}` = '{_quote(self.study)}' and tags.`safeadapt.role` = 'study'"
        runs = self.client.search_runs([self.experiment_id], query, max_results=1)
        if runs:
            return runs[0].info.run_id
        tags = {STUDY_TAG: self.study, "safeadapt.role": "study"}
        return self.client.create_run(self.experiment_id, run_name=f"{self.study}-summary",
                                      tags=tags).info.run_id  # fmt: skip

    def log_run(self, spec, record: RunRecord, folder: Path) -> None:
        if spec.key in self.logged:
            return
        tags = {
            "variant": spec.variant,
            "protocol": spec.protocol,
            "key": spec.key,
            KEY_TAG: spec.key,
            STUDY_TAG: self.study,
            "mlflow.parentRunId": self.parent,
        }
        run = self.client.create_run(self.experiment_id, run_name=spec.run_id, tags=tags)
        run_id = run.info.run_id
        try:
            self._batch(run_id, _metrics(record), _params(spec, record))
            payload = json.loads(json.dumps(record.to_json(), default=float))
            self.client.log_dict(run_id, payload, "record.json")
        finally:
            self.client.set_terminated(run_id)
        self.logged.add(spec.key)

    def _batch(self, run_id: str, metrics: dict[str, float], params: dict[str, Any] | None = None,
               tags: dict[str, str] | None = None) -> None:  # fmt: skip
        """One call per batch (MLflow takes up to 1,000 metrics and 100 params a call)."""
        import time

        from mlflow.entities import Metric, Param, RunTag

        now = int(time.time() * 1000)
        ms = [Metric(k, v, now, 0) for k, v in metrics.items()]
        ps = [Param(k, str(v)[:500]) for k, v in (params or {}).items()]
        ts = [RunTag(k, v) for k, v in (tags or {}).items()]
        for i in range(0, max(len(ms), len(ps), len(ts), 1), 100):
            self.client.log_batch(run_id, ms[i : i + 100], ps[i : i + 100], ts[i : i + 100])

    def log_study(self, summary: StudySummary, report_path: Path | None) -> None:
        run_id = self.parent
        self._batch(run_id, summary_metrics(summary), tags=summary_tags(summary))
        payload = json.loads(json.dumps(summary.to_json(), default=float))
        self.client.log_dict(run_id, payload, "summary.json")
        if report_path is not None:
            self.client.log_artifact(run_id, str(report_path))
        self.client.set_terminated(run_id)


def _quote(text: str) -> str:
    return text.replace("'", "\\'")


class WandbTracker:
    """One W&B run per study run (grouped by study, tagged with its variant and protocol), and a
    summary run carrying the recommendation, the summary's scores and the report. The keys of the
    runs already logged are kept in ``<dir>/safeadapt-logged.json``."""

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
        self.ledger = folder / "safeadapt-logged.json"
        try:
            self.logged = set(json.loads(self.ledger.read_text()))
        except (OSError, ValueError, TypeError):
            self.logged = set()

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
        if spec.key in self.logged:
            return
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
        self.logged.add(spec.key)
        write_atomic(self.ledger, json.dumps(sorted(self.logged)))

    def log_study(self, summary: StudySummary, report_path: Path | None) -> None:
        rec = summary.recommendation.variant
        run = self._run(f"{self.study}-summary", ["summary", f"recommended:{rec}"[:64]])
        try:
            run.summary.update({"recommended": rec, **summary_metrics(summary)})
            run.summary.update(summary_tags(summary))
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
        trackers.append(
            MLflowTracker(
                tracking.mlflow_uri,
                tracking.experiment or config.name,
                config.name,
                config.output_dir,
            )
        )
    if tracking.wandb is not None:
        trackers.append(WandbTracker(tracking.wandb, config.name, config.output_dir))
    return Trackers(trackers) if trackers else None
