"""Our vectorised MMD permutation test vs SciPy's ``permutation_test`` with the same statistic.

    .venv/bin/python bench/bench_shift.py [--n 300] [--dim 384] [--permutations 500]
    .venv/bin/python bench/bench_shift.py --scale 20000 100000   # per side: time and peak memory

Same data, same unbiased MMD^2 statistic and RBF bandwidth; SciPy evaluates the statistic once per
permutation (``vectorized=False``), ours computes every permutation from one kernel matrix.
Timings are single observations; they go here, never in the tests.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def scale(sizes: list[int], dim: int, permutations: int) -> None:
    """Each size per side in a fresh process: wall time and the process's peak resident memory
    (the kernel is computed in row blocks; above 25k per side each side is subsampled)."""
    import subprocess
    import sys

    code = (
        "import time, torch; from safeadapt.shift import mmd_test; "
        # VmHWM starts afresh at exec; ru_maxrss would carry over the parent's peak
        "peak = lambda: int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM'))"
        ".split()[1]) / 2**20; "
        "g = torch.Generator().manual_seed(0); n, d, p = {n}, {d}, {p}; "
        "x = torch.randn(n, d, generator=g); y = torch.randn(n, d, generator=g); y[:, :5] += 0.1; "
        "t = time.perf_counter(); out = mmd_test(x, y, n_permutations=p); "
        "print(f'{{time.perf_counter() - t:.1f}} s, peak '"
        "f'{{peak():.2f}} GB, '"
        "f'p {{out.p_value:.4f}}, subsampled {{out.subsampled}}')"
    )
    for n in sizes:
        run = subprocess.run(
            [sys.executable, "-c", code.format(n=n, d=dim, p=permutations)],
            capture_output=True,
            text=True,
            check=True,
        )
        print(
            f"MMD test, {n:,} per side, dim {dim}, {permutations} permutations: {run.stdout.strip()}"
        )


def main() -> None:
    from scipy.stats import permutation_test

    from safeadapt.shift import mmd_test

    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--permutations", type=int, default=500)
    parser.add_argument("--scale", type=int, nargs="*", help="sizes per side to time alone")
    args = parser.parse_args()
    if args.scale:
        scale(args.scale, args.dim, args.permutations)
        return
    g = torch.Generator().manual_seed(0)
    x = torch.randn(args.n, args.dim, generator=g, dtype=torch.float64)
    y = torch.randn(args.n, args.dim, generator=g, dtype=torch.float64)
    y[:, :5] += 0.3

    t0 = time.perf_counter()
    ours = mmd_test(x, y, n_permutations=args.permutations)
    t_ours = time.perf_counter() - t0

    bw = ours.bandwidth
    z = torch.cat([x, y])
    k = torch.exp(-torch.cdist(z, z).pow(2) / (2 * bw**2)).numpy()
    n = args.n

    def stat(ix, iy, axis=0):  # ix, iy: index arrays into the pooled sample
        ix, iy = ix.astype(int), iy.astype(int)
        kxx, kyy, kxy = k[np.ix_(ix, ix)], k[np.ix_(iy, iy)], k[np.ix_(ix, iy)]
        return (
            (kxx.sum() - np.trace(kxx)) / (n * (n - 1))
            + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
            - 2 * kxy.mean()
        )

    t0 = time.perf_counter()
    ref = permutation_test(
        (np.arange(n), np.arange(n, 2 * n)),
        stat,
        n_resamples=args.permutations,
        alternative="greater",
        vectorized=False,
        random_state=0,
    )
    t_scipy = time.perf_counter() - t0 + 0.0
    print(
        f"n={n} per set, dim={args.dim}, {args.permutations} permutations, torch {torch.__version__}"
    )
    print(
        f"ours (vectorised):        MMD^2 {ours['mmd2']:.5f}  p {ours['p_value']:.4f}  {t_ours:.2f} s"
    )
    print(
        f"scipy permutation_test:   MMD^2 {ref.statistic:.5f}  p {ref.pvalue:.4f}  {t_scipy:.2f} s"
    )
    print(
        f"(scipy's time excludes the kernel matrix, which it reuses from ours) -> ours {t_scipy / t_ours:.1f}x faster"
    )


if __name__ == "__main__":
    main()
