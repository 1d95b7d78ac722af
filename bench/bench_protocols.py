"""Per-step cost of fine-tuning variants relative to plain FT, on the same batches.

    .venv/bin/python bench/bench_protocols.py [--steps 8] [--modality text|image|both]

Each variant: forward + loss (+ penalty) + backward + AdamW step, averaged over ``--steps`` steps
after one warm-up step, on identical batches. Variants: FT, FT + L2-SP, FT + LDIFS with the
original features from the cache, FT + LDIFS with a live frozen copy, LoRA (r=8), BitFit,
last-2 blocks. Timings are single observations on this machine; they go here, never in tests.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import torch
import torch.nn.functional as F

VARIANTS = {
    "ft": {},
    "ft+l2-sp": {"regularizer": "l2-sp"},
    "ft+ldifs (frozen copy, unpooled taps)": {"regularizer": "ldifs"},
    "lora r=8": {"tune": "lora"},
    "bitfit": {"tune": "bitfit"},
    "last-2 blocks": {"tune": "last-k", "last_k": 2},
}


def bench(modality: str, steps: int, epochs: int = 1) -> list[dict]:
    """Seconds per step of each variant over ``epochs`` passes of the same ``steps + 1`` batches
    (the first step is a warm-up, left out)."""
    from safeadapt.backbones import load_backbone
    from safeadapt.data import load_builtin_task
    from safeadapt.data.features import FeatureCache
    from safeadapt.model import Classifier
    from safeadapt.protocols import FitContext
    from safeadapt.protocols.regularizers import build_regularizers
    from safeadapt.protocols.train_config import TrainConfig
    from safeadapt.protocols.train_loop import make_loader, param_groups
    from safeadapt.protocols.tuning import apply_tuning

    if modality == "text":
        task = load_builtin_task("vader-sentiment").subsample(32 * (steps + 1), 64)
        factory = lambda: load_backbone("minilm", max_length=64)  # noqa: E731
        batch_size = 32
    else:
        task = load_builtin_task("mnist").subsample(64 * (steps + 1), 64)
        factory = lambda: load_backbone("efficientnet-lite0", image_size=64)  # noqa: E731
        batch_size = 64
    cache = FeatureCache(tempfile.mkdtemp())
    ctx = FitContext(task, factory, 0, cache, show_progress=False)
    rows = []
    for name, settings in VARIANTS.items():
        cfg = TrainConfig(lr=1e-5, batch_size=batch_size, **settings)
        torch.manual_seed(0)
        model = Classifier(factory(), task.num_classes)
        regs = build_regularizers(ctx, model, cfg)  # cache warm-up happens here, not in the steps
        apply_tuning(model, cfg)
        model.train()
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.eval()
        opt = torch.optim.AdamW(param_groups(model, cfg))
        layers = tuple(dict.fromkeys(layer for r in regs for layer in r.layers))
        pooled = all(r.pooled for r in regs)  # LDIFS reads unpooled taps
        loader = make_loader(model, task.train, batch_size, shuffle=False, seed=0)
        times = []
        for batch in (b for _ in range(epochs) for b in loader):
            batch = dict(batch)
            labels, index = batch.pop("labels"), batch.pop("index")
            t0 = time.perf_counter()
            if layers:
                logits, taps = model(batch, layers=layers, pooled=pooled)
            else:
                logits, taps = model(batch), {}
            loss = F.cross_entropy(logits, labels)
            for r in regs:
                loss = loss + r(model, taps, index, batch)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            times.append(time.perf_counter() - t0)
        per_step = sum(times[1:]) / len(times[1:])
        rows.append(
            {
                "variant": name,
                "seconds_per_step": per_step,
                "trainable_parameters": sum(
                    p.numel() for p in model.parameters() if p.requires_grad
                ),
            }
        )
    base = rows[0]["seconds_per_step"]
    for r in rows:
        r["relative_to_ft"] = r["seconds_per_step"] / base
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--modality", choices=["text", "image", "both"], default="both")
    parser.add_argument("--epochs", type=int, default=1, help="passes over the same batches")
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    out = {}
    for modality in ["text", "image"] if args.modality == "both" else [args.modality]:
        rows = bench(modality, args.steps, args.epochs)
        out[modality] = rows
        what = (
            "MiniLM, batch 32 x 64 tokens"
            if modality == "text"
            else "EfficientNet-Lite0, batch 64 x 64 px"
        )
        print(
            f"\n{modality} ({what}), mean of {args.steps * args.epochs} steps ({args.epochs} pass(es)) after a warm-up step"
        )
        print(f"{'variant':<22}{'s/step':>8}{'x FT':>7}{'trainable':>14}")
        for r in rows:
            print(
                f"{r['variant']:<22}{r['seconds_per_step']:>8.3f}{r['relative_to_ft']:>7.2f}"
                f"{r['trainable_parameters']:>14,}"
            )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
