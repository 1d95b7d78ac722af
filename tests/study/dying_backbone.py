"""A backbone builder for the executor tests (``module:tests.study.dying_backbone:build``): the
first time it runs inside a run's Ray task it writes ``marker`` and kills its own worker
process (SIGKILL: no clean-up, no exception)."""

import os
import signal
from pathlib import Path


def build(marker: str, image_size: int = 32):
    from safeadapt.backbones import load_backbone

    if _in_run_task() and not Path(marker).exists():
        Path(marker).write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
    return load_backbone("efficientnet-lite0", image_size=image_size)


def _in_run_task() -> bool:
    try:
        import ray
    except ImportError:
        return False
    if not ray.is_initialized() or ray.get_runtime_context().get_task_id() is None:
        return False
    return (ray.get_runtime_context().get_task_name() or "").startswith("run ")
