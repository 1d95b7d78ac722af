"""Cost accounting: wall time, throughput, trainable parameters, peak memory.

Peak memory is the process's resident set size sampled every 20 ms during the measured block
(``ru_maxrss`` is a whole-process lifetime peak, useless per phase), and on CUDA also
``torch.cuda.max_memory_allocated``.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import torch
from torch import nn


def trainable_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


class CostMeter:
    """``with CostMeter() as m: ...``; then ``m.result(n_examples)``."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.peak_rss = 0
        self.seconds = 0.0
        self._stop = threading.Event()

    def _sample(self) -> None:
        import psutil

        proc = psutil.Process()
        while not self._stop.is_set():
            self.peak_rss = max(self.peak_rss, proc.memory_info().rss)
            self._stop.wait(self.interval)

    def __enter__(self) -> CostMeter:
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._t0
        self._stop.set()
        self._thread.join()

    def result(self, n_examples: int | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"seconds": self.seconds, "peak_rss_mb": self.peak_rss / 2**20}
        if n_examples:
            out["examples_per_s"] = n_examples / self.seconds if self.seconds > 0 else float("nan")
        if torch.cuda.is_available():
            out["cuda_max_allocated_mb"] = torch.cuda.max_memory_allocated() / 2**20
        return out
