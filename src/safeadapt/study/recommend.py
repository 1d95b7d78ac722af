"""From run records to the study summary: per-variant scores with intervals, the selection
rules, the pick, and paired verdicts on the test splits.

The recommendation rule is ``RULE`` below, stated in the report word for word.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from safeadapt.metrics.intervals import (
    holm,
    mcnemar_exact,
    paired_bootstrap,
    verdict,
)
from safeadapt.results import (
    SCORES,
    Comparison,
    DisagreementExample,
    Disagreements,
    DisagreementSide,
    PairedTest,
    RuleChoice,
    RunRecord,
    SplitDisagreement,
    StudySummary,
    VariantSummary,
    Verdict,
)
from safeadapt.safety import run_facts
from safeadapt.study.outputs import Outputs
from safeadapt.study.variants import Candidate, aggregate

# selection criterion -> (label, higher is better); all measured without test data
CRITERIA: dict[str, tuple[str, bool]] = {
    **{k: (SCORES[k].label, bool(SCORES[k].higher_is_better)) for k in
       ("val_accuracy", "ood_val_accuracy", "val_ece")},
    "forgetting": ("forgetting on reference tasks (after - before)", True),
}  # fmt: skip
RULES = {
    "ood-val": ("ood_val_accuracy", "OOD-validation selection"),
    "id-val": ("val_accuracy", "ID-validation selection"),
}
TIE = 0.005  # near-tie on the target when per-example outputs are missing
ALPHA = 0.05
SPLITS_SEEN = (
    "Choices saw: LP's C, early-stopping epoch, WiSE-FT's alpha, soup members -> ID val; grid "
    "point and recommendation -> ID val and OOD val (ood-val:*); test and OOD test -> only the "
    "reported numbers below (scored once)."
)


RULE = """\
1. Every choice uses validation data only: ID validation (``val``) and, when the task has OOD
   data, OOD validation (``ood-val:*``, carved from each OOD source). Test and OOD-test splits
   are scored once, for the report, and never feed a choice. Adversarial and corruption accuracy
   are measured on test samples, so they are reported but do not drive the pick.
2. Score each variant (protocol + grid point) by its mean over seeds on the selection criteria:
   ID-val accuracy (higher is better), mean OOD-val accuracy (higher; OOD-val rule only),
   ID-val expected calibration error (lower) and concept forgetting on reference tasks (higher,
   i.e. less forgotten; measured on other datasets) -- each where measured.
3. The *Pareto front*: variants that no other variant beats on one criterion while matching or
   beating it on all the others.
4. Candidates: variants on the front whose ID-val accuracy is within ``id_tolerance`` (default one
   point) of the best -- we do not trade much in-distribution accuracy for safety.
5. Target: mean OOD-val accuracy (the OOD-val rule, used when OOD validation data exist) or ID-val
   accuracy (the ID-val rule, what a practitioner without target data can do). Both rules are
   run and reported. Candidates not distinguishable from the best on the target (McNemar's exact
   test on the same validation examples for one seed, a paired bootstrap over examples of the
   seed-mean accuracy for several; p >= 0.05) are tied; among tied candidates, prefer lower
   ID-val ECE, then less forgetting, then cheaper training.
6. The pick is then compared on the test splits with every other variant (the same paired tests,
   Holm-corrected over the comparisons): better / not distinguishable / worse.
"""


def pareto_front(variants: Sequence[VariantSummary], criteria: Sequence[str]) -> list[str]:
    """Names of the variants no other variant dominates on ``criteria`` (means over seeds)."""

    def vec(v: VariantSummary) -> list[float]:
        return [v.scores[c].mean * (1 if CRITERIA[c][1] else -1) for c in criteria]

    vecs = {v.variant: vec(v) for v in variants}
    front = []
    for name, a in vecs.items():
        dominated = any(
            all(x >= y for x, y in zip(b, a, strict=True))
            and any(x > y for x, y in zip(b, a, strict=True))
            for other, b in vecs.items()
            if other != name
        )
        if not dominated:
            front.append(name)
    return front


def _paired_correct(
    a: Outputs, b: Outputs, splits: Sequence[str]
) -> tuple[np.ndarray, np.ndarray] | None:
    """Correctness ``(S, N)`` of A and B on the same examples of ``splits`` (concatenated), over
    the seeds both ran (each model's first seed when they share none)."""
    common = sorted(set(a.seeds) & set(b.seeds))
    xs, ys = [], []
    for name in splits:
        da, db = a.split(name), b.split(name)
        if da is None or db is None or len(da.labels) != len(db.labels):
            continue
        if common:
            xs.append(da.correct[[a.seeds.index(s) for s in common]])
            ys.append(db.correct[[b.seeds.index(s) for s in common]])
        else:
            xs.append(da.correct[:1])
            ys.append(db.correct[:1])
    if not xs:
        return None
    return np.concatenate(xs, axis=1), np.concatenate(ys, axis=1)


def paired_test(a: np.ndarray, b: np.ndarray) -> PairedTest:
    """Accuracy difference A - B on the same examples: McNemar's exact test for one seed; with
    several seeds (the same examples each time, so pooling them would count an example twice) a
    paired bootstrap over examples of the seed-mean accuracy difference."""
    if a.shape[0] == 1:
        out = mcnemar_exact(a[0], b[0])
        return PairedTest(out.difference, out.only_a, out.only_b, out.p_value, "McNemar exact")
    boot = paired_bootstrap(lambda x: x.mean(), [a.T], [b.T])
    return PairedTest(
        difference=boot.difference,
        only_a=int((a & ~b).sum()),
        only_b=int((~a & b).sum()),
        p_value=boot.p_value,
        test=f"paired bootstrap over examples ({a.shape[0]} seeds)",
    )


def _select(variants: list[Candidate], rule: str, id_tolerance: float) -> RuleChoice | None:
    """Apply one selection rule (``ood-val`` or ``id-val``); ``None`` when its target is not
    measured (no OOD validation data)."""
    target, title = RULES[rule]
    if not all(target in v.summary.scores for v in variants):
        return None
    keep = ["val_accuracy", "val_ece", "forgetting"]
    if rule == "ood-val":
        keep.insert(1, "ood_val_accuracy")
    criteria = [c for c in keep if all(c in v.summary.scores for v in variants)]
    front = pareto_front([v.summary for v in variants], criteria)
    by_name = {v.name: v for v in variants}

    def mean(name: str, key: str, default: float = 0.0) -> float:
        return by_name[name].mean(key, default)

    best_val = max(v.mean("val_accuracy") for v in variants)
    candidates = [n for n in front if mean(n, "val_accuracy") >= best_val - id_tolerance]
    candidates = candidates or front
    top = max(candidates, key=lambda n: mean(n, target))
    split_names = ["val"] if rule == "id-val" else _ood_val_names(by_name[top])
    tied, tests = [top], {}
    for n in candidates:
        if n == top:
            continue
        pair = _paired_correct(by_name[top].outputs, by_name[n].outputs, split_names)
        if pair is not None:
            test = paired_test(*pair)
            tests[n] = test
            if test.p_value >= ALPHA:
                tied.append(n)
        elif mean(n, target) >= mean(top, target) - TIE:
            tied.append(n)
    pick = sorted(
        tied,
        key=lambda n: (mean(n, "val_ece", 1.0), -mean(n, "forgetting"), mean(n, "fit_seconds")),
    )[0]
    words = [
        f"{title}: {pick} is on the Pareto front of {len(front)} of {len(variants)} variants "
        f"({', '.join(CRITERIA[c][0] for c in criteria)})",
        f"its ID-val accuracy {mean(pick, 'val_accuracy'):.3f} is within {id_tolerance:.3f} of "
        f"the best ({best_val:.3f})",
    ]
    if len(tied) > 1:
        others = ", ".join(n for n in tied if n != pick)
        words.append(
            f"on {CRITERIA[target][0]} it is not distinguishable from {others} (paired test "
            f"on the same validation examples, p >= {ALPHA}); among those it has the lowest "
            f"ID-val ECE, then least forgetting, then cheapest training"
        )
    else:
        words.append(f"it has the best {CRITERIA[target][0]} ({mean(pick, target):.3f})")
    return RuleChoice(
        rule=rule,
        title=title,
        variant=pick,
        criteria=tuple(criteria),
        pareto_front=tuple(front),
        candidates=tuple(candidates),
        tied=tuple(tied),
        tie_tests=tests,
        reason="; ".join(words) + ".",
    )


def _ood_val_names(variant: Candidate) -> list[str]:
    return [s for s in variant.outputs.split_names() if s.startswith("ood-val:")]


def pairwise(variants: list[Candidate], pick: str, splits: Sequence[str]) -> list[Comparison]:
    """The pick against every other variant on the test splits: McNemar's exact test on ID test
    accuracy and on OOD test accuracy (all OOD splits pooled), Holm-corrected per metric."""
    by_name = {v.name: v for v in variants}
    rows = []
    for metric, names in (("ID test accuracy", ["test"]), ("OOD test accuracy", list(splits))):
        if not names:
            continue
        tests = []
        for v in variants:
            if v.name == pick:
                continue
            pair = _paired_correct(by_name[pick].outputs, v.outputs, names)
            if pair is not None:
                tests.append((v.name, paired_test(*pair)))
        adjusted = holm([t.p_value for _, t in tests]) if tests else []
        for (other, t), p_adj in zip(tests, adjusted, strict=True):
            rows.append(
                Comparison(
                    metric=metric,
                    other=other,
                    difference=t.difference,
                    only_pick=t.only_a,
                    only_other=t.only_b,
                    p_value=t.p_value,
                    test=t.test,
                    p_holm=p_adj,
                    verdict=verdict(t.difference, p_adj, ALPHA),
                )
            )
    return rows


def recommend(variants: list[Candidate], id_tolerance: float = 0.01) -> Verdict:
    """Run both selection rules; the OOD-val rule decides when OOD validation data exist."""
    rules = {r: _select(variants, r, id_tolerance) for r in RULES}
    chosen_rules = {k: v for k, v in rules.items() if v is not None}
    used = "ood-val" if "ood-val" in chosen_rules else "id-val"
    chosen = chosen_rules[used]
    why = (
        "OOD validation data exist, so the pick uses them (target-domain evidence); the ID-val "
        "rule's pick is shown beside it"
        if used == "ood-val"
        else "the task has no OOD validation data, so the pick uses ID validation only"
    )
    other = [r for r in chosen_rules if r != used]
    reason = chosen.reason
    if other:
        alt = chosen_rules[other[0]].variant
        reason += f" ({why}: the {RULES[other[0]][1]} would pick {alt}.)"
    else:
        reason += f" ({why}.)"
    return Verdict(
        variant=chosen.variant,
        selection=used,
        rules=chosen_rules,
        reason=reason,
        splits_seen=SPLITS_SEEN,
        rule=RULE.strip(),
    )


def summarize(
    runs: Sequence[RunRecord],
    config,
    task,
    predictions: dict[str, Any] | None = None,
    families: Collection[str] | None = None,
) -> StudySummary:
    """The study's summary from its runs (``families``: the safety families whose intervals are
    computed; ``None``: all)."""
    variants = aggregate(runs, predictions, families)
    rec = recommend(variants, config.recommend.id_tolerance)
    rec = replace(
        rec,
        pairwise=tuple(pairwise(variants, rec.variant, [f"ood:{k}" for k in task.ood])),
    )
    rec = replace(rec, disagreements=disagreements(variants, rec, task))
    return StudySummary(
        study=config.name,
        task=task.name,
        modality=task.modality,
        backbone=config.backbone.resolve(task.modality).name,
        label_names=tuple(task.label_names),
        notes=tuple(task.notes),
        sizes={k: len(v) for k, v in task.splits(far=True).items()},
        seeds=tuple(config.seeds),
        splits=tuple(task.eval_splits()),
        selection_splits=tuple(task.selection_splits()),
        variants=tuple(v.summary for v in variants),
        recommendation=rec,
        safety=None if config.safety is None else tuple(_safety_facts(runs)),
    )


def disagreements(
    variants: list[Candidate], rec: Verdict, task, limit: int = 5
) -> Disagreements | None:
    """Where the pick and the runner-up (the other rule's pick, else the best other variant on
    the target) disagree, per test split: examples only one of them gets right (first seed)."""
    by_name = {v.name: v for v in variants}
    pick = rec.variant
    others = [r.variant for r in rec.rules.values() if r.variant != pick]
    if not others:
        target = RULES[rec.selection][0]
        rest = [v for v in variants if v.name != pick and target in v.summary.scores]
        if not rest:
            return None
        others = [max(rest, key=lambda v: v.mean(target)).name]
    runner = others[0]
    a, b = by_name[pick].outputs, by_name[runner].outputs
    if not a or not b:
        return None
    fa, fb = a.runs[a.seeds[0]], b.runs[b.seeds[0]]
    splits = task.splits()
    out: dict[str, SplitDisagreement] = {}
    for name in task.eval_splits():
        ra, rb = fa.splits.get(name), fb.splits.get(name)
        if ra is None or rb is None or not len(ra) or len(ra) != len(rb):
            continue
        labels, pa, pb = ra.label, ra.pred, rb.pred

        seen = (splits[name].inputs, labels, pa, pb, task.label_names, limit)
        out[name] = SplitDisagreement(
            pick_wrong_runner_right=_side((pa != labels) & (pb == labels), *seen),
            pick_right_runner_wrong=_side((pa == labels) & (pb != labels), *seen),
        )
    return Disagreements(runner, out)


def _side(mask, inputs, labels, pick, runner, names, limit: int) -> DisagreementSide:
    """The examples of ``mask`` (how many, and the first ``limit`` described)."""
    idx = np.flatnonzero(mask)
    return DisagreementSide(
        count=int(len(idx)),
        examples=tuple(
            DisagreementExample(
                index=int(i),
                input=_describe(inputs, int(i)),
                label=names[labels[i]],
                pick=names[pick[i]],
                runner_up=names[runner[i]],
            )
            for i in idx[:limit]
        ),
    )


def _describe(inputs, i: int) -> str:
    if isinstance(inputs, np.ndarray):
        return f"image #{i}"
    text = str(inputs[i])
    return text if len(text) <= 160 else text[:157] + "..."


def _safety_facts(runs: Sequence[RunRecord]) -> list[str]:
    """What the safety numbers were measured on (from the first run that has them)."""
    for r in runs:
        if r.safety:
            return run_facts(r.safety)
    return []
