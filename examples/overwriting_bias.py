"""Overwriting pretrained bias with finetuning data (Wang & Russakovsky, ICCV 2023), on CPU, as
ordinary safeadapt studies of the built-in ``coloured`` task (``safeadapt.data.builtin.coloured``).

1. **A biased backbone**: a study fine-tunes the packaged EfficientNet-Lite0 on the ``bias`` pool
   at label-colour correlation 1 (red means label 1) and saves its model; that file is the biased
   backbone (``backbone: {options: {weights: <runs/.../model.safetensors>}}``).
2. **Adaptation**: for the original and the biased backbone, one study per finetuning set --
   correlation 1 -> 0 at a fixed size, then a growing share of the minority colour at
   correlation 0 -- each with LP and FT over the seeds.
3. **Judged** on the balanced test set by the ``groups`` safety family: worst colour x label cell,
   and the gap in true-positive rate between the colours (the paper's bias metric).

Every study is resumable on its own (finished runs are reused by content), so killing this
script and running it again finishes only what is missing.

    .venv/bin/python examples/overwriting_bias.py --seeds 0 1 2   # about 7 min per seed
    .venv/bin/python examples/overwriting_bias.py --quick         # MNIST, small sizes, ~2 min
"""

from __future__ import annotations

import argparse
import csv
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

FULL = {
    "source": "fashion-mnist",
    "image_size": 64,
    "bias_size": 4000,
    "bias_steps": 250,
    "bias_lr": 3e-4,
    "size": 1000,
    "correlations": (1.0, 0.8, 0.6, 0.4, 0.2, 0.0),
    "minority_shares": (0.02, 0.05, 0.1, 0.25),
    "ft_steps": 80,
    "ft_lr": 1e-4,
    "batch_size": 32,
    "test_per_cell": 500,
}
QUICK = {
    **FULL,
    "source": "mnist",
    "image_size": 32,
    "bias_size": 600,
    "bias_steps": 60,
    "size": 300,
    "correlations": (1.0, 0.5, 0.0),
    "minority_shares": (0.05, 0.25),
    "ft_steps": 30,
    "test_per_cell": 100,
}
METRICS = ("id_accuracy", "worst_cell_accuracy", "tpr_gap")


def _study(name: str, out: Path, task: dict, weights: str | None, protocols: dict, seeds, s):
    options: dict[str, Any] = {"image_size": s["image_size"]}
    if weights is not None:
        options["weights"] = weights
    return {
        "name": name,
        "task": {"builtin": "coloured", "options": task, "ood_val_fraction": None},
        "backbone": {"name": "efficientnet-lite0", "options": options},
        "protocols": protocols,
        "seeds": list(seeds),
        # only the group metrics matter here; the rest of the suite is switched off
        "safety": {name: name == "groups" for name in _families()},
        "preflight": {"checks": []},
        "output": str(out / name),
    }


def _families() -> list[str]:
    from safeadapt.safety import FAMILIES

    return FAMILIES.names()


def levels(s: dict) -> list[tuple[str, float, dict]]:
    """``(sweep, level, task options)`` of every finetuning set."""
    base = {"source": s["source"], "size": s["size"], "test_per_cell": s["test_per_cell"]}
    out = [("correlation", r, {**base, "correlation": r}) for r in s["correlations"]]
    out += [("minority share", m, {**base, "minority_share": m}) for m in s["minority_shares"]]
    return out


def run(
    settings: dict, out: Path, seeds: Sequence[int], log: Callable[[str], None] = print
) -> list[dict[str, Any]]:
    """Run (or resume) every study; one row per (backbone, protocol, finetuning set) with the
    means over seeds of accuracy, worst cell and TPR gap (and their 95 % intervals)."""
    from safeadapt.data.features import FeatureCache
    from safeadapt.study import StudyConfig, run_study

    s = settings
    cache = FeatureCache()
    quiet = {"cache": cache, "show_progress": False, "log": log, "report": False}
    bias_task = {
        "source": s["source"],
        "pool": "bias",
        "correlation": 1.0,
        "size": s["bias_size"],
        "test_per_cell": s["test_per_cell"],
    }
    bias_ft = {
        "protocol": "ft",
        "lr": s["bias_lr"],
        "head_lr": s["bias_lr"] * 10,
        "epochs": 1000,
        "max_steps": s["bias_steps"],
        "batch_size": s["batch_size"],
        "patience": 1000,
    }
    raw = _study("bias", out, bias_task, None, {"biasing-ft": bias_ft}, seeds[:1], s)
    biased = run_study(StudyConfig.from_dict({**raw, "save_models": True}), **quiet)
    run_id = biased.runs[0].run_id
    weights = str(biased.output_dir / "runs" / run_id / "model.safetensors")
    b = biased.summary.variants[0].scores
    log(
        f"biased backbone on the balanced test: accuracy {b['id_accuracy'].mean:.3f}, worst "
        f"cell {b['worst_cell_accuracy'].mean:.3f}, TPR gap {b['tpr_gap'].mean:.3f}"
    )
    protocols = {
        "lp": {},
        "ft": {"lr": s["ft_lr"], "max_steps": s["ft_steps"], "batch_size": s["batch_size"]},
    }
    rows = []
    for backbone, path in (("original", None), ("biased", weights)):
        for sweep, level, task in levels(s):
            name = f"{backbone}-{sweep.replace(' ', '-')}-{level:g}"
            config = StudyConfig.from_dict(_study(name, out, task, path, protocols, seeds, s))
            result = run_study(config, **quiet)
            for v in result.summary.variants:
                row = {"backbone": backbone, "protocol": v.variant, "sweep": sweep}
                row.update({"level": level, "seeds": len(v.seeds)})
                for m in METRICS:
                    score = v.scores.get(m)
                    row[m] = score.mean if score else None
                    row[f"{m}_ci"] = (score.ci_low, score.ci_high) if score else (None, None)
                rows.append(row)
            log(f"{name}: {result.ran} runs now, {result.skipped} reused")
    return rows


def _order(item: tuple[str, float]) -> tuple[int, float]:
    sweep, level = item
    return (0, -level) if sweep == "correlation" else (1, level)


def table(rows: Sequence[dict[str, Any]]) -> str:
    """One line per finetuning set: worst cell / TPR gap per model (means over seeds)."""
    models = sorted({(r["backbone"], r["protocol"]) for r in rows}, key=lambda m: (m[1], m[0]))
    by = {(r["sweep"], r["level"], r["backbone"], r["protocol"]): r for r in rows}
    lines = [
        f"{'finetuning set':22s}" + "".join(f"{b + ' ' + p:>20s}" for b, p in models),
        f"{'':22s}" + "".join(f"{'worst cell  TPRgap':>20s}" for _ in models),
    ]
    for sweep, level in sorted({(r["sweep"], r["level"]) for r in rows}, key=_order):
        cells = []
        for b, p in models:
            r = by.get((sweep, level, b, p))
            cells.append(f"{r['worst_cell_accuracy']:.3f}  {r['tpr_gap']:.3f}" if r else "-")
        lines.append(
            f"{sweep + ' ' + format(level, 'g'):22s}" + "".join(f"{c:>20s}" for c in cells)
        )
    return "\n".join(lines)


def figure(rows: Sequence[dict[str, Any]]) -> bytes:
    """Worst cell and TPR gap against correlation and against minority share."""
    from safeadapt.safety.figures import plt, png

    p = plt()
    fig, axes = p.subplots(2, 2, figsize=(10, 7), squeeze=False)
    sweeps = (("correlation", "label-colour correlation"), ("minority share", "minority share"))
    metrics = (("worst_cell_accuracy", "worst-cell accuracy"), ("tpr_gap", "TPR gap"))
    models = sorted({(r["backbone"], r["protocol"]) for r in rows})
    protocols = sorted({pr for _, pr in models})
    for i, (sweep, xlabel) in enumerate(sweeps):
        for j, (metric, ylabel) in enumerate(metrics):
            ax = axes[i][j]
            for backbone, protocol in models:
                pts = sorted(
                    (r["level"], r[metric])
                    for r in rows
                    if (r["sweep"], r["backbone"], r["protocol"]) == (sweep, backbone, protocol)
                )
                if pts:
                    xs, ys = zip(*pts, strict=True)
                    ax.plot(xs, ys, "-" if backbone == "biased" else "--",
                            color=f"C{protocols.index(protocol)}",
                            marker="o" if backbone == "biased" else "s",
                            label=f"{backbone} backbone, {protocol}")  # fmt: skip
            ax.set_xlabel(xlabel)
            ax.set_ylabel(ylabel)
            ax.grid(alpha=0.3)
            if sweep == "correlation":
                ax.invert_xaxis()  # left to right: the finetuning data get less biased
    axes[0][0].legend(fontsize=8)
    fig.suptitle("Overwriting pretrained bias with finetuning data (balanced test set)")
    return png(fig)


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("safeadapt-out/overwrite-bias"))
    parser.add_argument("--quick", action="store_true", help="MNIST, small sizes, few steps")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    args = parser.parse_args(argv)
    rows = run(QUICK if args.quick else FULL, args.out, args.seeds)
    text = table(rows)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "table.txt").write_text(text + "\n")
    (args.out / "overwrite.png").write_bytes(figure(rows))
    with (args.out / "rows.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, [k for k in rows[0] if not k.endswith("_ci")],
                                extrasaction="ignore")  # fmt: skip
        writer.writeheader()
        writer.writerows(rows)
    print(f"written: {args.out / 'table.txt'}, {args.out / 'overwrite.png'}, rows.csv")
    return rows


if __name__ == "__main__":
    main()
