"""Is the verdict right? The recommendation's regret on held-out shifts (issue 26).

For each (task, shift) pair below -- chosen, with its half, before any result was seen -- one
study of {lp, ft, lp-ft, l2-sp, ldifs, wise-ft} x seeds at a small budget, then per selection
rule the **regret**: the OOD-test accuracy of the best variant in hindsight minus that of the
rule's pick (0 = the rule found the best), with a paired bootstrap interval over the OOD-test
examples (every split resampled within itself, the same examples for both variants, the best
variant held fixed). Rules:

- ``ood-val`` and ``id-val``: safeadapt's two selection rules (``study.recommend``); the verdict
  uses ``ood-val`` where OOD validation exists, as it does here for every pair;
- ``best-id-val``: the variant with the best mean ID-validation accuracy (no safety criteria, no
  ties);
- ``always-lp`` / ``always-ft`` / ``always-lp-ft`` / ``always-wise-ft``: a fixed habit.

Per rule it also counts the pairs where the pick is statistically indistinguishable from the
best (the paired test safeadapt's verdicts use, on the OOD-test examples, p >= 0.05), and the
regret on two safety scores: ECE after temperature scaling on ID test (pick minus the lowest)
and concept forgetting (the highest minus the pick's; less forgotten is better).

Halves: ``dev`` pairs may be used to change the rule; the rule is judged on ``held-out`` pairs,
which must not be used to change it (docs/regret.md).

    .venv/bin/python bench/bench_regret.py [--out DIR] [--seeds 0 1] [--pairs a,b] [--quick]

``--quick``: 2 pairs, 1 seed, a tiny budget (the tests run it); the full run writes
``regret.json`` and ``regret.png`` into ``--out`` and prints the tables of docs/regret.md.
Studies are content-keyed: a rerun resumes.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

TEXT = {"name": "minilm", "options": {"max_length": 64}}
IMAGE = {"name": "efficientnet-lite0", "options": {"image_size": 64}}
PROTOCOLS = ("lp", "ft", "lp-ft", "l2-sp", "ldifs", "wise-ft")
FIXED = ("lp", "ft", "lp-ft", "wise-ft")
RULES = ("ood-val", "id-val", "best-id-val", *(f"always-{p}" for p in FIXED))
ALPHA = 0.05
N_RESAMPLES = 2000
ALPHAS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)  # WiSE-FT's grid here (the paper's has 11 points)


# --- the pairs: declared before any result ------------------------------------------------


def _write_images(folder: Path, images: np.ndarray, labels: np.ndarray, names) -> str:
    """An image table (``image`` paths, ``label`` names) under ``folder``; returns the CSV."""
    import pandas as pd
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, img in enumerate(images):
        path = folder / f"{i:05d}.png"
        if not path.exists():
            Image.fromarray(np.asarray(img, dtype=np.uint8)).save(path)
        paths.append(path.name)
    table = folder / "split.csv"
    pd.DataFrame({"image": paths, "label": [names[y] for y in labels]}).to_csv(table, index=False)
    return str(table)


def _rotated_fashion(work: Path, seed: int, n: int) -> dict[str, str]:
    """Fashion-MNIST test images rotated by 30-60 degrees (either way), as MNIST's rotated
    split is made."""
    from scipy.ndimage import rotate

    from safeadapt.data import load_builtin_task

    task = load_builtin_task("fashion-mnist")
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(task.test), size=min(n, len(task.test)), replace=False)
    angles = rng.uniform(30, 60, len(idx)) * rng.choice([-1, 1], len(idx))
    images = np.stack([
        rotate(task.test.inputs[i], a, reshape=False, order=1, mode="constant", cval=0)
        for i, a in zip(idx, angles, strict=True)
    ])  # fmt: skip
    folder = work / "ood-fashion-rotated"
    return {"rotated": _write_images(folder, images, task.test.labels[idx], task.label_names)}


COLOURED_TEST_PER_CELL = 200  # MNIST's test pool has ~250 examples per colour x label cell


def _coloured_shifts(work: Path, seed: int, n: int) -> dict[str, str]:
    """Coloured digits from the disjoint ``bias`` pool: colour uncorrelated with the label
    (``decorrelated``) and the training correlation reversed (``reversed``, -0.9)."""
    from safeadapt.data import load_builtin_task

    out = {}
    for name, rho in (("decorrelated", 0.0), ("reversed", -0.9)):
        task = load_builtin_task("coloured", source="mnist", pool="bias", correlation=rho,
                                 size=n, test_per_cell=COLOURED_TEST_PER_CELL,
                                 seed=seed + 17)  # fmt: skip
        out[name] = _write_images(work / f"ood-coloured-{name}", task.train.inputs,
                                  task.train.labels, task.label_names)  # fmt: skip
    return out


@dataclass(frozen=True)
class Pair:
    """One (task, shift) pair: the study's task and backbone, its half, and (for shifts that
    are not a built-in task's OOD splits) a writer of the OOD files."""

    name: str
    half: str
    task: dict
    backbone: dict
    make_ood: Callable[[Path, int, int], dict[str, str]] | None = None
    note: str = ""
    settings: dict = field(default_factory=dict)


def _vader(domain: str, half: str) -> Pair:
    return Pair(f"vader-{domain}", half,
                {"builtin": "vader-sentiment", "options": {"train_domain": domain}}, TEXT,
                note=f"VADER sentiment, ID {domain}, OOD the other three domains")  # fmt: skip


PAIRS = (
    _vader("movies", "dev"),
    _vader("tweets", "held-out"),
    _vader("amazon", "dev"),
    _vader("nyt", "held-out"),
    Pair("mnist-digits", "dev", {"builtin": "mnist", "options": {"ood": ["digits"]}}, IMAGE,
         note="MNIST -> scikit-learn's 8x8 digits (upsampled)"),
    Pair("mnist-rotated", "held-out", {"builtin": "mnist", "options": {"ood": ["rotated"]}}, IMAGE,
         note="MNIST -> rotated MNIST test digits (30-60 degrees)"),
    Pair("fashion-rotated", "dev", {"builtin": "fashion-mnist"}, IMAGE, _rotated_fashion,
         note="Fashion-MNIST -> its test images rotated 30-60 degrees"),
    Pair("coloured-0.9", "held-out",
         {"builtin": "coloured", "options": {"source": "mnist", "correlation": 0.9,
                                             "test_per_cell": COLOURED_TEST_PER_CELL}}, IMAGE,
         _coloured_shifts,
         note="coloured MNIST, train colour-label correlation 0.9 -> decorrelated and reversed"),
)  # fmt: skip
QUICK_PAIRS = ("vader-movies", "mnist-rotated")


# --- one study per pair -------------------------------------------------------------------


@dataclass(frozen=True)
class Budget:
    max_train: int
    max_eval: int
    epochs: int
    ood_files: int  # examples written per generated OOD source
    forgetting: dict = field(default_factory=dict)  # the forgetting family's sizes


FULL = Budget(max_train=500, max_eval=300, epochs=2, ood_files=600,
              forgetting={"max_train": 300, "max_eval": 200})  # fmt: skip
QUICK = Budget(max_train=120, max_eval=80, epochs=1, ood_files=160,
               forgetting={"max_train": 100, "max_eval": 100})  # fmt: skip


def study_config(pair: Pair, budget: Budget, seeds: list[int], out: Path) -> dict:
    task = {**pair.task, "max_train": budget.max_train, "max_eval": budget.max_eval,
            "ood_val_fraction": 0.5}  # fmt: skip
    if pair.make_ood is not None:
        task["ood"] = pair.make_ood(out / "data", 0, budget.ood_files)
    lr = {"lr": 1e-4} if pair.backbone is IMAGE else {"lr": 5e-5}
    ft = {"epochs": budget.epochs, **lr}
    protocols = {p: ({} if p == "lp" else dict(ft)) for p in PROTOCOLS}
    protocols["wise-ft"]["alphas"] = list(ALPHAS)
    return {
        "name": f"regret-{pair.name}",
        "task": task,
        "backbone": pair.backbone,
        "protocols": protocols,
        "seeds": seeds,
        "safety": {
            name: False
            for name in (
                "effective_robustness",
                "adversarial",
                "corruption",
                "detection",
                "distortion",
                "groups",
                "selective",
                "conformal",
                "flips",
            )
        },  # fmt: skip
        "preflight": {"checks": []},
        "output": str(out / "study"),
    }


# --- the regret of each rule --------------------------------------------------------------


def _outputs(study_dir: Path) -> dict:
    """Per variant, its ``Outputs`` (per-example predictions of every seed)."""
    import pandas as pd

    from safeadapt.study.outputs import Outputs

    frame = pd.read_parquet(study_dir / "predictions.parquet")
    return {
        variant: Outputs({int(seed): rows for seed, rows in part.groupby("seed")})
        for variant, part in frame.groupby("variant")
    }


def picks(summary) -> dict[str, str]:
    """Each rule's pick from a study's summary."""
    variants = {v.variant: v for v in summary.variants}
    chosen = {rule: c.variant for rule, c in summary.recommendation.rules.items()}
    best_val = max(variants, key=lambda n: variants[n].mean("val_accuracy", 0.0))  # ties: first
    out = {"ood-val": chosen.get("ood-val"), "id-val": chosen.get("id-val"),
           "best-id-val": best_val}  # fmt: skip
    out.update({f"always-{p}": p for p in FIXED})
    return out


def pair_regret(summary, study_dir: Path, seed: int = 0) -> dict:
    """The regret of every rule on one pair's study (OOD test accuracy and the two safety
    scores), with the paired bootstrap replicates of the accuracy regret."""
    from safeadapt.metrics.intervals import percentile_interval
    from safeadapt.study.recommend import paired_test

    outputs = _outputs(study_dir)
    variants = {v.variant: v for v in summary.variants}
    ood = [s for s in summary.splits if s.startswith("ood:")]
    # per variant: seed-mean correctness per example of each OOD test split
    correct = {
        v: {s: outputs[v].split(s).correct.mean(0) for s in ood} for v in variants
    }  # fmt: skip
    acc = {v: float(np.mean([c.mean() for c in correct[v].values()])) for v in variants}
    best = max(acc, key=lambda v: acc[v])
    rng = np.random.default_rng(seed)
    draws = {s: rng.integers(0, len(correct[best][s]), (N_RESAMPLES, len(correct[best][s])))
             for s in ood}  # fmt: skip

    def replicates(v: str) -> np.ndarray:  # (R,) bootstrap regret of v against the best
        return np.mean([(correct[best][s][d] - correct[v][s][d]).mean(1)
                        for s, d in draws.items()], axis=0)  # fmt: skip

    ece = {v: variants[v].mean("ece_temperature_scaled") for v in variants}
    forget = {v: variants[v].mean("forgetting") for v in variants}
    ece_best = min((e for e in ece.values() if e is not None), default=None)
    forget_best = max((f for f in forget.values() if f is not None), default=None)
    rules = {}
    for rule, pick in picks(summary).items():
        if pick is None or pick not in variants:
            continue
        reps = replicates(pick)
        lo, hi = percentile_interval(reps)
        regret = acc[best] - acc[pick]
        a = np.concatenate([outputs[best].split(s).correct for s in ood], axis=1)
        b = np.concatenate([outputs[pick].split(s).correct for s in ood], axis=1)
        test = paired_test(a, b) if pick != best else None
        rules[rule] = {
            "pick": pick,
            "ood_accuracy": acc[pick],
            "regret": regret,
            "ci": [min(lo, regret), max(hi, regret)],
            "indistinguishable": test is None or test.p_value >= ALPHA,
            "p_value": None if test is None else test.p_value,
            "ece_regret": None if ece[pick] is None else ece[pick] - ece_best,
            "forgetting_regret": None if forget[pick] is None else forget_best - forget[pick],
            "_replicates": reps,
        }
    return {"best": best, "ood_accuracy": acc, "ood_splits": ood, "rules": rules}


def average(results: dict[str, dict], names: list[str]) -> dict[str, dict]:
    """Per rule, the mean regret over ``names`` with a stratified bootstrap interval (each
    pair's examples resampled within the pair), the share of indistinguishable picks and the
    mean safety regrets."""
    from safeadapt.metrics.intervals import percentile_interval

    out = {}
    for rule in RULES:
        rows = [results[n]["rules"][rule] for n in names if rule in results[n]["rules"]]
        if len(rows) != len(names):
            continue
        mean = float(np.mean([r["regret"] for r in rows]))
        lo, hi = percentile_interval(np.mean([r["_replicates"] for r in rows], axis=0))

        def avg(key: str, rows=rows) -> float | None:
            values = [r[key] for r in rows if r[key] is not None]
            return float(np.mean(values)) if len(values) == len(rows) else None

        out[rule] = {
            "regret": mean,
            "ci": [min(lo, mean), max(hi, mean)],
            "indistinguishable": sum(r["indistinguishable"] for r in rows),
            "pairs": len(rows),
            "ece_regret": avg("ece_regret"),
            "forgetting_regret": avg("forgetting_regret"),
        }
    return out


# --- output -------------------------------------------------------------------------------


def table(results: dict[str, dict]) -> str:
    """Markdown: regret (points of OOD-test accuracy) per pair and rule."""
    head = "| pair | half | best | " + " | ".join(RULES) + " |"
    lines = [head, "|" + "---|" * (3 + len(RULES))]
    for name, r in results.items():
        cells = []
        for rule in RULES:
            x = r["rules"].get(rule)
            cells.append("" if x is None else f"{100 * x['regret']:.1f}"
                         + ("" if x["indistinguishable"] else "*"))  # fmt: skip
        lines.append(f"| {name} | {r['half']} | {r['best']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def summary_table(averages: dict[str, dict[str, dict]]) -> str:
    lines = ["| rule | half | mean regret (pts) [95 % CI] | pick ~ best | ECE-TS regret | "
             "forgetting regret |", "|---|---|---|---|---|---|"]  # fmt: skip
    for half, per_rule in averages.items():
        for rule, a in per_rule.items():
            ece = "" if a["ece_regret"] is None else f"{a['ece_regret']:.3f}"
            fg = "" if a["forgetting_regret"] is None else f"{100 * a['forgetting_regret']:.1f}"
            lines.append(
                f"| {rule} | {half} | {100 * a['regret']:.1f} [{100 * a['ci'][0]:.1f}, "
                f"{100 * a['ci'][1]:.1f}] | {a['indistinguishable']}/{a['pairs']} | {ece} | {fg} |"
            )
    return "\n".join(lines)


def figure(results: dict[str, dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(names) + 2), 3.8))
    width = 0.8 / len(RULES)
    for j, rule in enumerate(RULES):
        xs, ys, err = [], [], []
        for i, n in enumerate(names):
            x = results[n]["rules"].get(rule)
            if x is not None:
                xs.append(i + (j - len(RULES) / 2 + 0.5) * width)
                ys.append(100 * x["regret"])
                err.append([100 * (x["regret"] - x["ci"][0]), 100 * (x["ci"][1] - x["regret"])])
        ax.bar(xs, ys, width, label=rule,
               yerr=np.asarray(err).T if err else None, capsize=1.5)  # fmt: skip
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(names)), [f"{n}\n({results[n]['half']})" for n in names],
                  fontsize=7)  # fmt: skip
    ax.set_ylabel("regret: best OOD-test acc. - pick's (points)")
    ax.legend(fontsize=6, ncol=4)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def run(pairs: list[Pair], budget: Budget, seeds: list[int], out: Path, log=print) -> dict:
    from safeadapt.study import StudyConfig, run_study

    results = {}
    for pair in pairs:
        start = time.perf_counter()
        folder = out / pair.name
        config = StudyConfig.from_dict(study_config(pair, budget, seeds, folder))
        result = run_study(config, show_progress=False, log=lambda m: None, report=False)
        r = pair_regret(result.summary, Path(result.output_dir))
        r["half"] = pair.half
        r["seconds"] = time.perf_counter() - start
        r["runs"] = {"ran": result.ran, "reused": result.skipped}
        results[pair.name] = r
        log(f"{pair.name} ({pair.half}): best {r['best']}, "
            + ", ".join(f"{k} {100 * v['regret']:.1f}" for k, v in r["rules"].items())
            + f"  [{r['seconds']:.0f} s]")  # fmt: skip
    return results


def _plain(results: dict) -> dict:
    return {n: {**r, "rules": {k: {a: b for a, b in v.items() if not a.startswith("_")}
                               for k, v in r["rules"].items()}}
            for n, r in results.items()}  # fmt: skip


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="safeadapt-out/bench-regret")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--pairs", default=None, help="comma-separated pair names (default all)")
    parser.add_argument("--quick", action="store_true", help="2 pairs, 1 seed, a tiny budget")
    args = parser.parse_args(argv)
    out = Path(args.out)
    names = args.pairs.split(",") if args.pairs else [p.name for p in PAIRS]
    if args.quick:
        names, seeds, budget = list(QUICK_PAIRS), [0], QUICK
    else:
        seeds, budget = args.seeds, FULL
    unknown = sorted(set(names) - {p.name for p in PAIRS})
    if unknown:
        parser.error(f"unknown pairs {unknown}; pairs: {[p.name for p in PAIRS]}")
    start = time.perf_counter()
    results = run([p for p in PAIRS if p.name in names], budget, seeds, out)
    halves = {h: [n for n in results if results[n]["half"] == h] for h in ("dev", "held-out")}
    halves = {"all": list(results), **{h: ns for h, ns in halves.items() if ns}}
    averages = {h: average(results, ns) for h, ns in halves.items()}
    wall = time.perf_counter() - start
    print(table(results))
    print()
    print(summary_table(averages))
    print(f"\nwall time {wall / 60:.1f} min; * = the pick is distinguishable from the best "
          f"(paired test on OOD test, p < {ALPHA})")  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    report = {"budget": budget.__dict__, "seeds": seeds, "wall_seconds": wall,
              "pairs": _plain(results), "averages": averages}  # fmt: skip
    (out / "regret.json").write_text(json.dumps(report, indent=1, default=float))
    figure(results, out / "regret.png")
    return report


if __name__ == "__main__":
    main()
