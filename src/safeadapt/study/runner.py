"""Run a study: every protocol x grid point x seed, resumable, then the summary and the report.

``run_study`` loads the task once, shares one feature cache across runs, skips runs whose record
is already stored (same content hash), hands the others to the study's executor (this process,
or Ray tasks: ``safeadapt.study.executors``) which stores each finished run atomically, ranks the
protocols (``recommend``) and writes ``results.csv``, ``summary.json`` and ``report.html``. A
study killed at any point and rerun with the same config finishes the missing runs only.

``quick=True`` runs the same study on a small sample into ``<output>/quick`` (the "cheap proof
of concept before the full run" workflow), after a half-size one in ``<output>/quick-1of2``, and
estimates the full study's duration from the two (``estimate_full``).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from typing import Any

from safeadapt.data.features import FeatureCache
from safeadapt.errors import InvalidConfig, SafeAdaptError
from safeadapt.files import write_atomic, write_parquet_atomic
from safeadapt.study.config import StudyConfig
from safeadapt.study.freshness import content_fingerprints, study_inputs
from safeadapt.study.plan import RunSpec, expand_runs
from safeadapt.study.store import RunStore, claim_output

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


def run_study(
    config: StudyConfig,
    *,
    quick: bool = False,
    cache: FeatureCache | None = None,
    show_progress: bool = True,
    log: Callable[[str], Any] = print,
    report: bool = True,
    force: bool = False,
) -> StudyResult:
    """Run (or resume) ``config``; with ``quick``, run the small version and estimate the full.
    ``force``: write into an output folder that holds another study's results (refused
    otherwise)."""
    from safeadapt.backbones import check_code_trust

    # code the study names is refused before anything is loaded or written
    check_code_trust(config.backbone.name or "", config.backbone.options)
    if quick:
        # <output>/quick lives inside the study's folder
        claim_output(config.output_dir, config.name, force)
        # A half-size sample first separates each run's fixed cost from its per-example cost
        # (+~50 % of the quick study's time). It runs first so that it, not the quick study,
        # pays the process's warm-up (imports, first passes), which would otherwise read as a
        # per-example cost. Without it the estimate is proportional.
        smaller = None
        try:
            log("quick study at half size first, to tell fixed costs from per-example costs")
            smaller = run_study(
                quick_config(config, 2), cache=cache, show_progress=False, log=lambda m: None,
                report=False, force=force,
            )  # fmt: skip
        except SafeAdaptError as err:  # e.g. too few examples of a class at half size
            log(f"half-size quick study failed ({err}); the estimate is proportional")
        small = quick_config(config)
        result = run_study(
            small, cache=cache, show_progress=show_progress, log=log, report=report, force=force
        )
        result.estimate = estimate_full(config, result, smaller)
        return result

    from safeadapt.threads import use_threads

    with use_threads(config.threads):
        return _run(config, cache, show_progress, log, report, force)


def _run(
    config: StudyConfig, cache, show_progress: bool, log, report: bool, force: bool = False
) -> StudyResult:
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
        # before any work: never write into a foreign folder
        claim_output(config.output_dir, config.name, force)
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
    summary["inputs"] = study_inputs(config, task.modality, content)
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


def _sizes(task) -> tuple[int, int, int]:
    """Training, evaluation (every evaluation split) and ID-test examples."""
    return len(task.train), sum(len(s) for s in task.eval_splits().values()), len(task.test)


def _cost_parts(
    record: dict[str, Any], sizes: tuple[int, int, int], caps: dict[str, int | None]
) -> dict[str, tuple[float, float]]:
    """``{part: (examples it scales with, seconds)}`` of one run: the fit (training examples),
    each safety family (its own sample: the ID test capped at the family's ``max_examples``, or
    the evaluation examples) and the rest of the evaluation (evaluation examples)."""
    n_train, n_eval, n_test = sizes
    families = (record.get("safety") or {}).get("family_seconds") or {}
    rest = max(0.0, record["eval_seconds"] - sum(families.values()))
    parts = {"fit": (float(n_train), record["fit_seconds"]), "eval": (float(n_eval), rest)}
    for name, seconds in families.items():
        cap = caps.get(name)
        parts[f"family:{name}"] = (float(min(n_test, cap) if cap else n_eval), seconds)
    return parts


def estimate_full(
    config: StudyConfig, quick: StudyResult, smaller: StudyResult | None = None
) -> dict[str, Any]:
    """Seconds the full study should take. Each run's time is split into parts -- the fit, each
    safety family, the rest of the evaluation -- and each part is a fixed cost plus a cost per
    example of what it scales with (``_cost_parts``: a family on a capped sample stops growing
    at its cap), fitted on the quick study and its half-size twin (``fit_line``); the study's own
    time beyond its runs (loading, pre-flight, report) likewise on the training size. Times the
    number of seeds. Without ``smaller``: proportional (fixed costs scaled up with the data,
    which over-estimates)."""
    try:
        full_task = config.task.load()
    except SafeAdaptError:
        return {}
    full = _sizes(full_task)
    q_sizes = _sizes(quick.config.task.load())
    s_sizes = _sizes(smaller.config.task.load()) if smaller else q_sizes
    families = config.safety.families if config.safety is not None else {}
    caps = {name: getattr(cfg, "max_examples", None) for name, cfg in families.items()}
    small = {r["run"]["variant"]: r for r in smaller.runs} if smaller else {}
    seconds, fixed = 0.0, 0.0
    for r in quick.runs:
        parts = _cost_parts(r, q_sizes, caps)
        twin = r["run"]["variant"] in small
        twin_parts = _cost_parts(small[r["run"]["variant"]], s_sizes, caps) if twin else parts
        target = _cost_parts(r, full, caps)  # the sizes each part scales with, at full size
        for part, (x, y) in parts.items():
            x2, y2 = twin_parts.get(part, (x, y))
            a, b = fit_line(x, y, x2, y2)
            seconds += (a + b * target[part][0]) * len(config.seeds)
            fixed += a * len(config.seeds)
    if smaller is not None and quick.ran and smaller.ran:  # the study's time outside its runs

        def outside(result: StudyResult) -> float:
            inside = sum(r["fit_seconds"] + r["eval_seconds"] for r in result.runs)
            return max(0.0, result.seconds - inside)

        a, b = fit_line(q_sizes[0], outside(quick), s_sizes[0], outside(smaller))
        seconds += a + b * full[0]
        fixed += a
    return {
        "full_seconds": seconds,
        "fixed_seconds": fixed,
        "quick_seconds": quick.seconds + (smaller.seconds if smaller else 0.0),
        "train_ratio": full[0] / q_sizes[0],
        "eval_ratio": full[1] / max(1, q_sizes[1]),
        "two_sizes": smaller is not None,
        "runs": len(expand_runs(config, full_task.modality)),
    }
