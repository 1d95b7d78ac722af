"""Overwriting pretrained bias with finetuning data (Wang & Russakovsky, ICCV 2023), on CPU.

Coloured Fashion-MNIST (label = class >= 5, colour red / green). A *biased* EfficientNet-Lite0 is
made by fine-tuning the packaged one on data where colour predicts the label; then the biased and
the original backbone are adapted (LP, FT) on curated finetuning sets with decreasing label-colour
correlation and increasing minority-colour share, and judged on a balanced test set.

    .venv/bin/python examples/overwriting_bias.py              # about 7 min per seed, 2 CPU cores
    .venv/bin/python examples/overwriting_bias.py --quick      # MNIST, small sizes, ~2 min

Killed? Run the same command again: finished runs are kept in rows.jsonl and skipped.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from safeadapt.bias.overwrite import (
    OverwriteConfig,
    overwrite_figure,
    overwrite_table,
    run_overwrite,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("safeadapt-out/overwrite-bias"))
    parser.add_argument("--quick", action="store_true", help="MNIST, small sizes, few steps")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="table: mean over seeds")
    args = parser.parse_args()
    settings = {}
    if args.quick:
        settings = dict(
            source="mnist",
            image_size=32,
            bias_size=600,
            bias_steps=60,
            finetune_size=300,
            correlations=(1.0, 0.5, 0.0),
            minority_shares=(0.05, 0.25, 0.5),
            ft_steps=30,
            test_per_cell=100,
        )
    rows = [
        row
        for seed in args.seeds
        for row in run_overwrite(OverwriteConfig(**settings, seed=seed), args.out)
    ]
    table = overwrite_table(rows)
    print(table)
    (args.out / "table.txt").write_text(table + "\n")
    (args.out / "overwrite.png").write_bytes(overwrite_figure(rows))
    keys = ["backbone", "protocol", "sweep", "level", "seed", "accuracy", "worst_group_accuracy",
            "worst_group", "group_gap", "tpr_gap", "fit_seconds"]  # fmt: skip
    with (args.out / "rows.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, keys, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    print(
        f"written: {args.out / 'table.txt'}, {args.out / 'overwrite.png'}, {args.out / 'rows.csv'}"
    )


if __name__ == "__main__":
    main()
