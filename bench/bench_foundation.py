"""Foundation benchmark: feature extraction, LP (ours) vs scikit-learn, one FT epoch.

    .venv/bin/python bench/bench_foundation.py [--n-train 2000] [--n-eval 1000]

Timings are single observations on this machine; they go here, never in the tests.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import numpy as np
import torch


def bench_modality(modality: str, n_train: int, n_eval: int, ft_train: int) -> dict:
    from safeadapt.backbones import load_backbone
    from safeadapt.data import load_builtin_task
    from safeadapt.data.features import FeatureCache
    from safeadapt.model import Classifier
    from safeadapt.protocols.lp import LPConfig, fit_linear_probe
    from safeadapt.protocols.train_config import TrainConfig
    from safeadapt.protocols.train_loop import finetune

    if modality == "text":
        task = load_builtin_task("vader-sentiment").subsample(n_train, n_eval)
        factory = lambda: load_backbone("minilm", max_length=64)  # noqa: E731
        ft_cfg = TrainConfig(lr=3e-5, head_lr=1e-3, epochs=1, batch_size=32)
    else:
        task = load_builtin_task("mnist").subsample(n_train, n_eval)
        factory = lambda: load_backbone("efficientnet-lite0", image_size=64)  # noqa: E731
        ft_cfg = TrainConfig(lr=3e-4, head_lr=3e-3, epochs=1, batch_size=64)
    out: dict = {
        "modality": modality,
        "n_train": len(task.train),
        "n_val": len(task.val),
        "n_test": len(task.test),
    }
    backbone = factory()
    with tempfile.TemporaryDirectory() as tmp:
        cache = FeatureCache(tmp)
        t0 = time.perf_counter()
        feats = {
            n: cache.get(backbone, s, show_progress=False).features
            for n, s in [("train", task.train), ("val", task.val), ("test", task.test)]
        }
        n_items = len(task.train) + len(task.val) + len(task.test)
        extract_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        for split in (task.train, task.val, task.test):
            cache.get(backbone, split, show_progress=False)
        hit_s = time.perf_counter() - t0
    out["extract_seconds"] = extract_s
    out["extract_items_per_s"] = n_items / extract_s
    out["cache_hit_seconds"] = hit_s

    y = {
        n: torch.from_numpy(s.labels)
        for n, s in [("train", task.train), ("val", task.val), ("test", task.test)]
    }
    grid = LPConfig().c_grid
    t0 = time.perf_counter()
    head = fit_linear_probe(
        feats["train"], y["train"], feats["val"], y["val"], task.num_classes, LPConfig()
    )
    out["lp_ours_seconds"] = time.perf_counter() - t0
    out["lp_ours_C"] = head.C
    out["lp_ours_test_acc"] = (
        (head.logits(feats["test"]).argmax(1) == y["test"]).float().mean().item()
    )

    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    t0 = time.perf_counter()
    best = None
    for C in grid:  # the same selection rule: val accuracy over the same C grid
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=1000))
        clf.fit(feats["train"].numpy(), y["train"].numpy())
        acc = clf.score(feats["val"].numpy(), y["val"].numpy())
        if best is None or acc > best[0]:
            best = (acc, C, clf)
    out["lp_sklearn_seconds"] = time.perf_counter() - t0
    out["lp_sklearn_C"] = best[1]
    out["lp_sklearn_test_acc"] = best[2].score(feats["test"].numpy(), y["test"].numpy())

    torch.manual_seed(0)
    model = Classifier(factory(), task.num_classes)
    ft_split = task.train.sample(ft_train, seed=0)
    info = finetune(model, ft_split, task.val.sample(64, 0), ft_cfg, seed=0, show_progress=False)
    out["ft_epoch_examples"] = len(ft_split)
    out["ft_epoch_train_seconds"] = info["train_seconds"]
    out["ft_examples_per_s"] = len(ft_split) / info["train_seconds"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n-train", type=int, default=2000)
    parser.add_argument("--n-eval", type=int, default=1000)
    parser.add_argument("--ft-train", type=int, default=512, help="examples in the timed FT epoch")
    parser.add_argument("--modality", choices=["text", "vision", "both"], default="both")
    args = parser.parse_args()
    mods = (
        ["text", "image"]
        if args.modality == "both"
        else ["image" if args.modality == "vision" else "text"]
    )
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    rows = [bench_modality(m, args.n_train, args.n_eval, args.ft_train) for m in mods]
    for r in rows:
        print(f"\n== {r['modality']}: train {r['n_train']}, val {r['n_val']}, test {r['n_test']}")
        print(
            f"feature extraction: {r['extract_seconds']:.1f} s ({r['extract_items_per_s']:.0f} items/s); "
            f"cache hit for the same splits: {r['cache_hit_seconds']:.2f} s"
        )
        print(
            f"LP ours (scikit-learn lbfgs warm-started along 5 C values, val NLL tie-break): "
            f"{r['lp_ours_seconds']:.2f} s, C={r['lp_ours_C']}, test acc {r['lp_ours_test_acc']:.3f}"
        )
        print(
            f"LP scikit-learn pipeline (StandardScaler + lbfgs, cold, same grid): "
            f"{r['lp_sklearn_seconds']:.2f} s, C={r['lp_sklearn_C']}, test acc "
            f"{r['lp_sklearn_test_acc']:.3f}; time ratio ours / scikit-learn "
            f"{r['lp_ours_seconds'] / r['lp_sklearn_seconds']:.2f} (threads: see the first line)"
        )
        print(
            f"one FT epoch on {r['ft_epoch_examples']} examples: {r['ft_epoch_train_seconds']:.1f} s "
            f"({r['ft_examples_per_s']:.1f} examples/s)"
        )
    print("\n" + json.dumps(rows, indent=1, default=float))


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
