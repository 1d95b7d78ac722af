"""Several processes on one study, under ``accelerate launch`` (or ``torchrun``): who is who, a
shard of the work each, the results gathered, one process that writes.

Everything goes through Accelerate's ``PartialState`` (gloo on CPUs, NCCL on GPUs); with one
process -- no launcher -- every function here is a no-op that costs nothing. The rules the rest
of safeadapt follows:

- every process takes the same decisions in the same order (the main process decides what to
  reuse and :func:`broadcast` s it), so the collective calls line up;
- feature extraction and logits prediction give each process every ``world_size``-th batch and
  :func:`gather` the outputs (every process ends with the whole result);
- training is data-parallel: the global batch of ``batch_size`` is split between processes;
- only :func:`is_main` writes records, caches, reports and trackers.
"""

from __future__ import annotations

import functools
import os
from typing import Any, TypeVar

T = TypeVar("T")


def launched() -> bool:
    """Whether a launcher started several processes (``WORLD_SIZE`` > 1)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1")) > 1
    except ValueError:
        return False


@functools.cache
def _state():
    import torch
    from accelerate import PartialState

    # Accelerate takes the CPU path (gloo) only when told: without a GPU, or when asked to
    cpu = not torch.cuda.is_available() or os.environ.get("ACCELERATE_USE_CPU", "").lower() in (
        "1",
        "true",
    )
    return PartialState(cpu=cpu)


def world_size() -> int:
    return _state().num_processes if launched() else 1


def rank() -> int:
    return _state().process_index if launched() else 0


def is_main() -> bool:
    return rank() == 0


def shard(items: list[T]) -> list[T]:
    """This process's share of ``items``: every ``world_size``-th one, from its rank."""
    return items[rank() :: world_size()] if launched() else items


def gather(items: list[T]) -> list[T]:
    """Every process's ``items`` concatenated in rank order (each process gets all of them)."""
    if not launched():
        return items
    from accelerate.utils import gather_object

    return gather_object(items)


def broadcast(value: T) -> T:
    """The main process's ``value``, on every process."""
    if not launched():
        return value
    from accelerate.utils import broadcast_object_list

    return broadcast_object_list([value], from_process=0)[0]


def all_agree(flag: bool) -> bool:
    """True only if ``flag`` is true on every process."""
    if not launched():
        return flag
    return all(gather([bool(flag)]))


def barrier() -> None:
    if launched():
        _state().wait_for_everyone()


def describe() -> dict[str, Any]:
    """For the run's environment record."""
    return {"world_size": world_size(), "rank": rank()}
