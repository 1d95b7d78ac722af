"""Feature extraction of MiniLM on the VADER test split: batches in input order vs batches of
similar length (``safeadapt.data.features.in_batches``), alternated, medians of repeats; also the
padded tokens each computes. Issue 15 measured 23.9 s / 109,656 padded tokens in input order
(1 thread) against 55,250 when sorted by token count.

    .venv/bin/python bench/bench_extraction.py [--repeats 2] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import torch

    from safeadapt.backbones import load_backbone
    from safeadapt.data import features, load_builtin_task

    torch.set_num_threads(args.threads)
    split = load_builtin_task("vader-sentiment").test
    backbone = load_backbone("minilm", max_length=64)
    tok = backbone.tokenizer
    sorted_order = features.length_order

    def padded(order_fn) -> int:
        features.length_order = order_fn
        total = 0
        lengths = backbone.input_lengths(split.inputs)
        for _, raw in features.in_batches(split.inputs, 64, lengths):
            lengths = [min(64, len(tok(t)["input_ids"])) for t in raw]
            total += len(raw) * max(lengths)
        return total

    modes = {"input order": lambda inputs, lengths=None: None, "by length": sorted_order}
    tokens = {name: padded(fn) for name, fn in modes.items()}
    times: dict[str, list[float]] = {name: [] for name in modes}
    ref = None
    for _ in range(args.repeats):
        for name, fn in modes.items():
            features.length_order = fn
            start = time.perf_counter()
            out = features.extract_features(backbone, split, 64, show_progress=False).features
            times[name].append(time.perf_counter() - start)
            if ref is None:
                ref = out
            assert torch.allclose(out, ref, atol=1e-4), "orders disagree"
    features.length_order = sorted_order
    for name in modes:
        t = statistics.median(times[name])
        print(
            f"{name}: {t:.1f} s ({len(split) / t:.0f} texts/s), {tokens[name]:,} padded tokens "
            f"({len(split)} texts, 64 tokens, batch 64, {args.threads} thread(s); medians of "
            f"{args.repeats})"
        )


if __name__ == "__main__":
    main()
