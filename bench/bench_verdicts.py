"""What trust costs: intervals + paired tests, and content fingerprints, against a study's time.

Runs (or resumes) a small text study -- LP, FT and LP-FT on VADER with MiniLM, 1,200 training
snippets, 800 per evaluation split, one seed, calibration / detection / distortion / groups -- and
then times, in this process (medians of repeats):

- the summary with intervals, paired verdicts and disagreements (``summarize`` with the
  per-example predictions) against the same summary without them (no predictions);
- the content fingerprints of the data and the backbone weights (``study.freshness.content_fingerprints``).

Each extra cost is printed as a share of the study's wall time (fit + evaluation of every run).
The issue's goals: intervals and tests <= 5 %, fingerprints <= 2 %.

    .venv/bin/python bench/bench_verdicts.py [--out DIR] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path


def _median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="safeadapt-out/bench-verdicts")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    from safeadapt.study import StudyConfig, run_study
    from safeadapt.study.freshness import content_fingerprints
    from safeadapt.study.recommend import summarize
    from safeadapt.study.runner import planned_runs
    from safeadapt.study.store import RunStore

    config = StudyConfig.from_dict(
        {
            "name": "bench-verdicts",
            "task": {"builtin": "vader-sentiment", "max_train": 1200, "max_eval": 800},
            "backbone": {"name": "minilm", "options": {"max_length": 64}},
            "protocols": {"lp": {}, "ft": {"epochs": 1}, "lp-ft": {"epochs": 1}},
            "safety": {"adversarial": False, "corruption": False, "forgetting": False},
            "preflight": {"checks": []},
            "output": str(Path(args.out)),
        }
    )
    result = run_study(config, show_progress=False, log=lambda m: None, report=False)
    study_seconds = sum(r.wall_seconds for r in result.runs)
    task = config.task.load()
    specs = planned_runs(config, task)
    store = RunStore(config.output_dir)
    predictions = {s.run_id: store.load_predictions(s) for s in specs}
    runs = result.runs

    with_tests = _median_seconds(lambda: summarize(runs, config, task, predictions), args.repeats)
    without = _median_seconds(lambda: summarize(runs, config, task, None), args.repeats)
    factory = config.backbone.factory(task.modality)
    fingerprints = _median_seconds(lambda: content_fingerprints(task, factory), args.repeats)
    load_backbone = _median_seconds(factory, args.repeats)

    print(f"study wall time (fit + eval of {len(runs)} runs): {study_seconds:.1f} s")
    extra = with_tests - without
    print(
        f"summary with intervals + paired tests {with_tests:.3f} s, without {without:.3f} s: "
        f"+{extra:.3f} s = {100 * extra / study_seconds:.2f} % of the study (goal <= 5 %)"
    )
    print(
        f"content fingerprints {fingerprints:.3f} s (of which loading the backbone "
        f"{load_backbone:.3f} s) = {100 * fingerprints / study_seconds:.2f} % of the study "
        "(goal <= 2 %)"
    )


if __name__ == "__main__":
    main()
