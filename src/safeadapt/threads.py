"""Thread discipline: small fits on one thread, backbone passes on all of them.

Fits on small tensors -- the linear probe, the hardened heads (VAT, UDP, soups of heads), the
temperature -- gain nothing from several threads and lose much when the machine is busy:
scikit-learn's logistic regression on VADER's 7,050 x 384 features took 0.36 s on one thread and
1.86 s on two on a 2-core machine (``bench/bench_linear_probe.py``). :func:`one_thread` runs a block on one torch thread and one BLAS thread
(threadpoolctl); :func:`use_threads` caps a whole study (``threads:`` in the study, for users who
share a machine).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


@contextlib.contextmanager
def use_threads(n: int | None) -> Iterator[None]:
    """torch and BLAS on at most ``n`` threads inside the block (None: unchanged)."""
    if n is None:
        yield
        return
    import os

    import torch
    from threadpoolctl import threadpool_limits

    n = max(1, min(n, os.cpu_count() or 1))  # more threads than CPUs only adds contention
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        with threadpool_limits(limits=n):
            yield
    finally:
        torch.set_num_threads(before)


def one_thread() -> contextlib.AbstractContextManager[None]:
    """A block of small-tensor work on one thread."""
    return use_threads(1)
