"""The regret benchmark's follow-ups, read from its stored studies (issue 26, items 1-2).

    .venv/bin/python bench/bench_regret_rules.py [--out DIR]   (DIR: bench_regret.py's --out)

Nothing is trained: every number comes from the studies ``bench_regret.py`` wrote.

1. **The verdict against a habit, paired.** Per pair, the OOD-test accuracy of the verdict's pick
   minus that of ``always-lp-ft`` / ``always-ft`` on the same examples, with the bootstrap
   replicates of ``bench_regret.pair_regret`` (the same resampled examples for both); averaged
   over the pairs of each half with a percentile interval (each pair resampled within itself).
2. **Rule variants on the development half.** The ``ood-val`` rule with another ID-validation
   gate (a wider tolerance, a paired test instead of a fixed tolerance, none) or another
   tie-break (the best on OOD-val, the best on ID-val, instead of the lowest ID-val ECE). A
   variant is adopted only if it lowers the **dev** half's mean regret; the held-out half is
   printed beside it for the record and is not used to choose (docs/regret.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_regret as br  # noqa: E402

HABITS = ("lp-ft", "ft")
HALF = {p.name: p.half for p in br.PAIRS}


def load(out: Path, pair: str):
    """A stored pair's summary, candidates (summary + per-example outputs) and outputs."""
    from safeadapt.results import StudySummary
    from safeadapt.study.variants import Candidate

    folder = out / pair / "study"
    summary = StudySummary.from_json(json.loads((folder / "summary.json").read_text()))
    outputs = br._outputs(folder)
    return summary, [Candidate(v, outputs[v.variant]) for v in summary.variants], folder


def versus(results: dict[str, dict], names: list[str], habit: str) -> dict:
    """The verdict's OOD-test accuracy minus ``always-<habit>``'s, mean over ``names`` with a
    paired percentile interval, and per pair."""
    from safeadapt.metrics.intervals import percentile_interval

    per_pair, reps = {}, []
    for n in names:
        rules = results[n]["rules"]
        verdict, fixed = rules["ood-val"], rules[f"always-{habit}"]
        per_pair[n] = fixed["regret"] - verdict["regret"]  # = pick's accuracy - habit's
        reps.append(fixed["_replicates"] - verdict["_replicates"])
    mean = float(np.mean(list(per_pair.values())))
    lo, hi = percentile_interval(np.mean(reps, axis=0))
    return {"difference": mean, "ci": [min(lo, mean), max(hi, mean)], "per_pair": per_pair}


# --- rule variants: (name, pick function over a pair's candidates) ---------------------------


def _gate(tolerance: float, paired: bool = False) -> Callable:
    """The ood-val rule with candidates gated at ``tolerance`` below the best ID-val accuracy,
    or (``paired``) also kept when a paired test on the ID-val examples cannot tell them from
    the best."""
    from safeadapt.study import recommend as rc

    def pick(candidates) -> str:
        if not paired:
            return rc._select(candidates, "ood-val", tolerance).variant
        best = max(candidates, key=lambda c: c.mean("val_accuracy"))
        kept = []
        for c in candidates:
            near = c.mean("val_accuracy") >= best.mean("val_accuracy") - tolerance
            pair = None if near else rc._paired_correct(best.outputs, c.outputs, ["val"])
            if near or (pair is not None and rc.paired_test(*pair).p_value >= rc.ALPHA):
                kept.append(c)
        return rc._select(kept, "ood-val", 1.0).variant  # everyone kept is inside the gate

    return pick


def _tie_break(key: str) -> Callable:
    """The ood-val rule with its tied candidates broken by the highest ``key`` instead."""
    from safeadapt.study import recommend as rc

    def pick(candidates) -> str:
        by_name = {c.name: c for c in candidates}
        tied = rc._select(candidates, "ood-val", 0.01).tied
        return max(tied, key=lambda n: by_name[n].mean(key))

    return pick


VARIANTS = {
    "current (1-point ID-val gate, ECE tie-break)": _gate(0.01),
    "2-point gate": _gate(0.02),
    "3-point gate": _gate(0.03),
    "paired-test gate": _gate(0.01, paired=True),
    "no gate": _gate(1.0),
    "tie-break: best OOD-val": _tie_break("ood_val_accuracy"),
    "tie-break: best ID-val": _tie_break("val_accuracy"),
}


def rule_variants(out: Path, names: list[str]) -> dict[str, dict[str, tuple[str, float]]]:
    """Per variant and pair: (pick, regret in OOD-test accuracy against the hindsight best)."""
    table: dict[str, dict[str, tuple[str, float]]] = {v: {} for v in VARIANTS}
    for pair in names:
        summary, candidates, folder = load(out, pair)
        outputs = br._outputs(folder)
        ood = [s for s in summary.splits if s.startswith("ood:")]
        acc = {v: float(np.mean([outputs[v].split(s).correct.mean() for s in ood]))
               for v in outputs}  # fmt: skip
        for variant, pick_of in VARIANTS.items():
            pick = pick_of(candidates)
            table[variant][pair] = (pick, max(acc.values()) - acc[pick])
    return table


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="safeadapt-out/bench-regret")
    args = parser.parse_args(argv)
    out = Path(args.out)
    names = [p.name for p in br.PAIRS if (out / p.name / "study" / "summary.json").is_file()]
    halves = {"all": names, **{h: [n for n in names if HALF[n] == h]
                               for h in ("dev", "held-out")}}  # fmt: skip
    results = {}
    for n in names:
        summary, _, folder = load(out, n)
        results[n] = br.pair_regret(summary, folder)
    print("| verdict minus | half | mean difference (pts) [95 % paired CI] | per pair |")
    print("|---|---|---|---|")
    report: dict = {"versus": {}, "variants": {}}
    for habit in HABITS:
        for half, ns in halves.items():
            v = versus(results, ns, habit)
            report["versus"][f"{habit}/{half}"] = v
            pairs = ", ".join(f"{k} {100 * d:+.1f}" for k, d in v["per_pair"].items())
            print(f"| always-{habit} | {half} | {100 * v['difference']:+.1f} "
                  f"[{100 * v['ci'][0]:+.1f}, {100 * v['ci'][1]:+.1f}] | {pairs} |")  # fmt: skip
    table = rule_variants(out, names)
    print("\n| rule variant | dev mean regret (pts) | held-out (for the record) | dev picks |")
    print("|---|---|---|---|")
    for variant, per_pair in table.items():
        means = {h: 100 * float(np.mean([per_pair[n][1] for n in halves[h]]))
                 for h in ("dev", "held-out")}  # fmt: skip
        picks = ", ".join(f"{n} {per_pair[n][0]} {100 * per_pair[n][1]:.1f}" for n in halves["dev"])
        report["variants"][variant] = {"means": means, "picks": per_pair}
        print(f"| {variant} | {means['dev']:.2f} | {means['held-out']:.2f} | {picks} |")
    return report


if __name__ == "__main__":
    main()
