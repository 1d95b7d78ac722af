"""Run a study: every protocol x grid point x seed, resumable, then the summary and the report.

``run_study`` loads the task once, shares one feature cache across runs, skips runs whose record
is already stored (same content hash), hands the others to the study's executor (this process,
or Ray tasks: ``safeadapt.study.executors``) which stores each finished run atomically, ranks the
protocols (``recommend``) and writes ``results.csv``, ``summary.json`` and ``report.html``. A
study killed at any point and rerun with the same config finishes the missing runs only.

``quick=True`` runs the same study on a small sample into ``<output>/quick`` (the "cheap proof
of concept before the full run" workflow), after a half-size one in ``<output>/quick-1of2``, and
estimates the full study's duration from the two (``safeadapt.study.estimate``).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from typing import Any

from safeadapt.data.features import FeatureCache
from safeadapt.errors import InvalidConfig, SafeAdaptError
from safeadapt.files import write_atomic
from safeadapt.results import RunRecord, StudySummary
from safeadapt.results.predictions import RunPredictions
from safeadapt.study.config import StudyConfig
from safeadapt.study.estimate import Estimate, estimate_full, quick_config
from safeadapt.study.freshness import content_fingerprints, study_inputs
from safeadapt.study.plan import RunSpec, expand_runs
from safeadapt.study.preflight import results_of, stored_preflight
from safeadapt.study.store import RunStore, claim_output
from safeadapt.study.validation import check_reference_data
from safeadapt.study.writers import write_predictions, write_results_csv, write_variants_csv


@dataclasses.dataclass
class StudyResult:
    config: StudyConfig
    runs: list[RunRecord]
    summary: StudySummary | None  # None on a non-main process under a launcher
    output_dir: Any
    report_path: Any
    skipped: int
    ran: int
    seconds: float
    estimate: Estimate | None = None

    def _repr_html_(self) -> str:
        from safeadapt.report.notebook import study_html

        return study_html(self)

    def figure(self, key: str) -> bytes | None:
        """One of the report's figures as PNG bytes (``safeadapt.report.plots.FIGURES``: e.g.
        ``cost``, ``wise_curve``, ``family_calibration``), or None when the study did not
        measure what it shows."""
        from safeadapt.report.plots import FIGURES

        if key not in FIGURES:
            raise KeyError(f"no figure {key!r}; figures: {', '.join(FIGURES)}")
        if self.summary is None:
            return None
        return FIGURES[key][1](self.runs, self.summary)


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
        whole = _whole_data_is_quick(config)
        if whole is not None:  # the quick sample would be the study's whole data
            log(f"the full study is no larger than the quick sample ({whole}): running it "
                "once instead of a quick study and an estimate")  # fmt: skip
            result = run_study(config, cache=cache, show_progress=show_progress, log=log,
                               report=report, force=force)  # fmt: skip
            result.estimate = Estimate(result.seconds, len(result.runs), ran_in_full=True)
            return result
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


def _whole_data_is_quick(config: StudyConfig) -> str | None:
    """The sizes, when the quick sample of ``config`` holds all of its data (the quick study
    would be the full study's data at one seed); else None."""
    from safeadapt.study.estimate import task_sizes

    full = task_sizes(config.task.load())
    if task_sizes(quick_config(config).task.load()) != full:
        return None
    return f"train {full[0]}, evaluation {full[1]}"


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
    check_reference_data(config)  # before any training: those probes run after it
    task = config.task.load()
    factory = config.backbone.factory(task.modality)
    content = content_fingerprints(task, factory, config)
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
    preflight = stored_preflight(config, task, factory, cache, out, log, content)
    records: dict[str, RunRecord] = {}
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

    def on_done(spec: RunSpec, record: RunRecord, computed: bool) -> None:
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
        return StudyResult(config, [], None, out, None, skipped, ran, seconds)
    runs = [records[s.run_id] for s in specs]
    if tracker is not None:  # the reused runs too: each tracker logs a run once (by its key)
        for spec in specs:
            tracker.log_run(spec, records[spec.run_id], store.folder(spec))
    if skipped:
        log(f"resumed: {skipped} finished runs reused, {ran} run now")

    predictions = {s.run_id: store.load_predictions(s) for s in specs}
    outputs = {k: None if f is None else RunPredictions.from_frame(f)  # read once, used twice
               for k, f in predictions.items()}  # fmt: skip
    summary = dataclasses.replace(
        summarize(runs, config, task, outputs),
        preflight=results_of(preflight),
        inputs=study_inputs(config, task.modality, content),
    )
    if config.checks is not None:
        from safeadapt.study.checks import evaluate_checks

        checks = evaluate_checks(summary, config.checks)
        summary = dataclasses.replace(summary, checks=checks)
        log(
            f"checks on {checks.variant}: "
            + (f"FAILED {', '.join(checks.failed)}" if checks.failed else "all passed")
        )
    write_atomic(out / "summary.json", json.dumps(summary.to_json(), indent=1, default=float))
    write_results_csv(runs, out / "results.csv", outputs)
    write_variants_csv(summary, out / "variants.csv")
    write_predictions(specs, predictions, out / "predictions.parquet")
    from safeadapt.study.evidence import sign

    if sign(out) is not None:  # SAFEADAPT_SIGNING_KEY: the evidence, signed
        log(f"evidence signed: {out / 'evidence.sig'}")
    report_path = None
    if report:
        from safeadapt.report import write_report

        figures = {k: v.figure for k, v in preflight.items() if v.figure}
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
    return expand_runs(config, task.modality, content_fingerprints(task, factory, config))
