"""Run a study: every protocol x grid point x seed, resumable, then the summary and the report.

``run_study`` loads the task once, shares one feature cache across runs, skips runs whose record
is already stored (same content hash), hands the others to the study's executor (this process,
or Ray tasks: ``safeadapt.study.executors``) which stores each finished run atomically, ranks the
protocols (``recommend``) and writes ``results.csv``, ``summary.json`` and ``report.html``. A
study killed at any point and rerun with the same config finishes the missing runs only.

``quick=True`` runs the same study on a small sample into ``<output>/quick`` first (the "cheap
proof of concept before the full run" workflow) and estimates the full study's duration from it.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from typing import Any

from safeadapt.data.features import FeatureCache
from safeadapt.errors import InvalidConfig, SafeAdaptError
from safeadapt.study.config import RunSpec, StudyConfig, expand_runs
from safeadapt.study.store import RunStore, claim_output, write_atomic

QUICK_TRAIN = 200
QUICK_EVAL = 100


@dataclasses.dataclass
class StudyResult:
    config: StudyConfig
    runs: list[dict[str, Any]]
    summary: dict[str, Any]
    output_dir: Any
    report_path: Any
    skipped: int
    ran: int
    seconds: float
    estimate: dict[str, Any] | None = None

    def _repr_html_(self) -> str:
        from safeadapt.report.notebook import study_html

        return study_html(self)


def quick_config(config: StudyConfig) -> StudyConfig:
    """The same study on a small stratified sample, one seed, written to ``<output>/quick``."""
    task = dataclasses.replace(
        config.task,
        max_train=min(config.task.max_train or QUICK_TRAIN, QUICK_TRAIN),
        max_eval=min(config.task.max_eval or QUICK_EVAL, QUICK_EVAL),
    )
    return dataclasses.replace(
        config,
        task=task,
        seeds=config.seeds[:1],
        output=str(config.output_dir / "quick"),
        tracking=dataclasses.replace(config.tracking, mlflow_uri=None, wandb=None),
    )


def run_study(
    config: StudyConfig,
    *,
    quick: bool = False,
    cache: FeatureCache | None = None,
    show_progress: bool = True,
    log: Callable[[str], Any] = print,
    report: bool = True,
) -> StudyResult:
    """Run (or resume) ``config``; with ``quick``, run the small version and estimate the full."""
    if quick:
        claim_output(config.output_dir)  # <output>/quick lives inside the study's folder
        small = quick_config(config)
        result = run_study(small, cache=cache, show_progress=show_progress, log=log, report=report)
        result.estimate = estimate_full(config, result)
        return result

    from safeadapt.threads import use_threads

    with use_threads(config.threads):
        return _run(config, cache, show_progress, log, report)


def _run(config: StudyConfig, cache, show_progress: bool, log, report: bool) -> StudyResult:
    """The study itself (see :func:`run_study`)."""
    from safeadapt import distributed
    from safeadapt.study.executors import EXECUTORS, finished
    from safeadapt.study.recommend import summarize
    from safeadapt.study.tracking import make_tracker

    started = time.perf_counter()
    # Under `accelerate launch` every process runs the study together (sharded extraction and
    # evaluation, data-parallel training); the main process decides, speaks and writes.
    main = distributed.is_main()
    if distributed.launched() and config.executor.name != "sequential":
        raise InvalidConfig(
            f"executor {config.executor.name!r} runs each run in its own process: start the "
            "study without `accelerate launch` (or use the sequential executor under it)."
        )
    log = log if main else (lambda message: None)
    if main:
        claim_output(config.output_dir)  # before any work: never write into a foreign folder
    task = config.task.load()
    factory = config.backbone.factory(task.modality)
    content = content_fingerprints(task, factory)
    specs = expand_runs(config, task.modality, content)
    out = config.output_dir
    store = RunStore(out)
    if main:
        write_atomic(out / "study.json", json.dumps(config.to_dict(), indent=1, default=str))
    cache = cache or FeatureCache()
    tracker = make_tracker(config) if main else None
    log(
        f"study {config.name!r}: {len(specs)} runs ({len(config.protocols)} protocol entries x "
        f"grid x {len(config.seeds)} seeds) on {task.name} "
        f"(train {len(task.train)}, test {len(task.test)}, OOD {', '.join(task.ood) or 'none'})"
    )
    for note in task.notes:
        if note.startswith("leakage:"):
            log(f"warning: {note}")
    preflight = _preflight(config, task, factory, cache, out, log, content)
    records: dict[str, dict[str, Any]] = {}
    todo = []
    for spec in specs if main else ():  # under a launcher only the main process reads the store
        stored = finished(config, store, spec)
        if stored is not None:
            records[spec.run_id] = stored
        else:
            if store.load(spec) is not None:
                log(f"run {spec.run_id} is stored without its model (save_models): redoing it")
            todo.append(spec)
    if distributed.launched():  # every process runs what the main process found missing
        planned = {spec.run_id: spec for spec in specs}
        todo = [planned[i] for i in distributed.broadcast([spec.run_id for spec in todo])]
    skipped, ran = len(specs) - len(todo), 0

    def on_done(spec: RunSpec, record: dict[str, Any], computed: bool) -> None:
        nonlocal ran, skipped
        records[spec.run_id] = record
        if not computed:  # another process stored it meanwhile
            skipped += 1
            return
        ran += 1
        if tracker is not None:
            tracker.log_run(spec, record, store.folder(spec))

    execute = EXECUTORS.get(config.executor.name)
    execute(config, todo, task, cache, on_done=on_done, log=log, show_progress=show_progress)
    if not main:  # the main process summarises and writes
        seconds = time.perf_counter() - started
        return StudyResult(config, [], {}, out, None, skipped, ran, seconds)
    runs = [records[s.run_id] for s in specs]
    if skipped:
        log(f"resumed: {skipped} finished runs reused, {ran} run now")

    predictions = {s.run_id: store.load_predictions(s) for s in specs}
    summary = summarize(runs, config, task, predictions)
    summary["preflight"] = {k: v["result"] for k, v in preflight.items()}
    if config.checks is not None:
        from safeadapt.study.checks import evaluate_checks

        summary["checks"] = evaluate_checks(summary, config.checks)
        failed = [c["name"] for c in summary["checks"]["checks"] if not c["passed"]]
        log(
            f"checks on {summary['checks']['variant']}: "
            + (f"FAILED {', '.join(failed)}" if failed else "all passed")
        )
    write_atomic(out / "summary.json", json.dumps(summary, indent=1, default=float))
    _write_csv(runs, out / "results.csv", predictions)
    _write_variants_csv(summary, out / "variants.csv")
    _write_predictions(specs, predictions, out / "predictions.parquet")
    report_path = None
    if report:
        from safeadapt.report import write_report

        figures = {k: v["figure"] for k, v in preflight.items() if v["figure"]}
        report_path = write_report(summary, runs, out / "report.html", figures)
    if tracker is not None:
        tracker.log_study(summary, report_path)
    return StudyResult(
        config, runs, summary, out, report_path, skipped, ran, time.perf_counter() - started
    )


def planned_runs(config: StudyConfig, task=None) -> list[RunSpec]:
    """The study's runs with their content-keyed ids, as ``run_study`` plans them (loads the
    data and the backbone to fingerprint them)."""
    task = task or config.task.load()
    factory = config.backbone.factory(task.modality)
    return expand_runs(config, task.modality, content_fingerprints(task, factory))


def content_fingerprints(task, factory) -> dict[str, str]:
    """What the study's results depend on beyond its settings: the data's and the backbone's
    content hashes (a local folder's weights can change under the same name)."""
    return {"data": task.fingerprint(), "backbone": factory().fingerprint()}


def _preflight(config: StudyConfig, task, factory, cache, out, log, content) -> dict[str, Any]:
    """Run (or reload) the pre-flight checks; stored atomically like runs, keyed by content."""
    import base64
    import hashlib

    from safeadapt import distributed
    from safeadapt.shift.report import VERSION
    from safeadapt.study.preflight import run_preflight

    if not config.preflight.checks:
        return {}
    key = hashlib.sha256(
        json.dumps(
            [
                dataclasses.asdict(config.task),
                dataclasses.asdict(config.backbone.resolve(task.modality)),
                dataclasses.asdict(config.preflight),
                content,
                VERSION,
            ],
            sort_keys=True,
            default=str,
        ).encode()
    ).hexdigest()[:16]
    path = out / "preflight.json"
    reused = _stored_preflight(path, key) if distributed.is_main() else None
    reused = distributed.broadcast(reused)  # several processes: all reuse, or all compute
    if reused is not None:
        return reused
    log(f"pre-flight checks: {', '.join(config.preflight.checks)}")
    checks = run_preflight(task, factory(), cache, config.preflight)
    if not distributed.is_main():
        return checks
    for name, v in checks.items():
        r = v["result"]
        if name == "shift":
            log(f"shift: {'detected' if r['shift_detected'] else 'not detected'}; {r['advice']}")
        if name == "audit" and r["flags"]:
            log("audit: " + "; ".join(r["flags"]))
        if v["figure"]:
            (out / f"{name}.png").write_bytes(v["figure"])
    payload = {
        "key": key,
        "checks": {
            k: {
                "result": v["result"],
                "figure": base64.b64encode(v["figure"]).decode() if v["figure"] else None,
            }
            for k, v in checks.items()
        },
    }
    write_atomic(path, json.dumps(payload, indent=1, default=float))
    return checks


def _stored_preflight(path, key: str) -> dict[str, Any] | None:
    """The stored pre-flight results if they were computed for ``key``."""
    import base64

    if not path.is_file():
        return None
    try:
        stored = json.loads(path.read_text())
        if stored.get("key") != key:
            return None
        return {
            k: {
                "result": v["result"],
                "figure": base64.b64decode(v["figure"]) if v["figure"] else None,
            }
            for k, v in stored["checks"].items()
        }
    except (ValueError, KeyError, OSError):
        return None  # recompute


def _write_csv(runs: list[dict[str, Any]], path, predictions=None) -> None:
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


def _write_predictions(specs: list[RunSpec], predictions: dict[str, Any], path) -> None:
    """The study's combined per-example table: every run's predictions with its run id,
    variant and seed in front."""
    import pandas as pd

    from safeadapt.study.store import write_parquet_atomic

    frames = []
    for spec in specs:
        frame = predictions.get(spec.run_id)
        if frame is not None:
            frames.append(frame.assign(run_id=spec.run_id, variant=spec.variant, seed=spec.seed))
    if frames:
        write_parquet_atomic(path, pd.concat(frames, ignore_index=True))


def _write_variants_csv(summary: dict[str, Any], path) -> None:
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


def estimate_full(config: StudyConfig, quick: StudyResult) -> dict[str, Any]:
    """Seconds the full study should take: each quick run's fit time scaled by the training-set
    ratio, its evaluation time by the evaluation-set ratio, times the number of seeds (a rough,
    linear estimate; attacks and corruptions run on capped samples, so evaluation grows less)."""
    try:
        full_task = config.task.load()
    except SafeAdaptError:
        return {}
    quick_task = quick.config.task.load()
    train_ratio = len(full_task.train) / len(quick_task.train)
    n_eval = sum(len(s) for s in full_task.eval_splits().values())
    eval_ratio = n_eval / max(1, sum(len(s) for s in quick_task.eval_splits().values()))
    per_run = [r["fit_seconds"] * train_ratio + r["eval_seconds"] * eval_ratio for r in quick.runs]
    seconds = sum(per_run) * len(config.seeds)
    return {
        "full_seconds": seconds,
        "quick_seconds": quick.seconds,
        "train_ratio": train_ratio,
        "eval_ratio": eval_ratio,
        "runs": len(expand_runs(config, full_task.modality)),
    }
