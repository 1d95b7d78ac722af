"""The README's reproduction table of a finished study: per variant, mean over seeds ± std and
[95 % interval] of ID test and each OOD split's accuracy, ID feature distortion and the OOD / ID
distortion ratio; then paired tests of the named pairs on the OOD test examples.

    .venv/bin/python scripts/reproduction_table.py STUDY_DIR [--pairs lp-ft:ft,ft:lp]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def cell(v, key: str, points: bool = False) -> str:
    s = v.scores.get(key)
    if s is None or s.mean is None:
        return "–"
    fmt = (lambda x: f"{x:.3f}") if not points else (lambda x: f"{x:.2f}")
    out = fmt(s.mean)
    if s.n > 1:
        out += f" ± {fmt(s.std)}"
    if s.has_interval:
        out += f" [{fmt(s.ci_low)}, {fmt(s.ci_high)}]"
    return out


def main(argv=None) -> None:
    from safeadapt.results import StudySummary
    from safeadapt.study.recommend import _paired_correct, paired_test

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study")
    parser.add_argument("--pairs", default="lp-ft:ft,ft:lp")
    args = parser.parse_args(argv)
    folder = Path(args.study)
    summary = StudySummary.from_json(json.loads((folder / "summary.json").read_text()))
    ood = [s for s in summary.splits if s.startswith("ood:")]
    head = ["variant", "ID test", *[f"OOD {s.removeprefix('ood:')}" for s in ood],
            "ID distortion", "OOD / ID distortion"]  # fmt: skip
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for v in summary.variants:
        cells = [v.variant, cell(v, "id_accuracy"), *[cell(v, f"accuracy:{s}") for s in ood],
                 cell(v, "distortion_id", True), cell(v, "distortion_ood_ratio", True)]  # fmt: skip
        print("| " + " | ".join(cells) + " |")
    import pandas as pd

    from safeadapt.study.outputs import Outputs

    frame = pd.read_parquet(folder / "predictions.parquet")
    outputs = {
        variant: Outputs({int(seed): rows for seed, rows in part.groupby("seed")})
        for variant, part in frame.groupby("variant")
    }
    for pair in args.pairs.split(","):
        a, b = pair.split(":")
        if a not in outputs or b not in outputs:
            continue
        for splits in ([s] for s in ood):
            x, y = _paired_correct(outputs[a], outputs[b], splits)
            t = paired_test(x, y)
            print(f"{a} - {b} on {splits[0]}: {t.difference:+.3f} (p {t.p_value:.3g}, {t.test})")
        x, y = _paired_correct(outputs[a], outputs[b], ["test"])
        t = paired_test(x, y)
        print(f"{a} - {b} on test: {t.difference:+.3f} (p {t.p_value:.3g})")
    rec = summary.recommendation
    print("recommended:", rec.variant, {r: c.variant for r, c in rec.rules.items()})


if __name__ == "__main__":
    main()
