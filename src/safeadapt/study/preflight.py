"""Pre-flight checks a study runs before any training, registered by name (adding one is one
function here): ``shift`` (train vs test vs each OOD split in embedding space) and ``audit``
(group representation and label-group association of the training set, when it has groups)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from safeadapt._registry import Registry

# name -> fn(task, backbone, cache, settings) -> (JSON-able result, optional PNG) or None
Check = Callable[..., tuple[dict[str, Any], bytes | None] | None]
PREFLIGHT: Registry[Check] = Registry("pre-flight check")


@PREFLIGHT.register("shift")
def shift_check(task, backbone, cache, settings) -> tuple[dict[str, Any], bytes | None]:
    from safeadapt.shift import public, shift_figure, shift_report

    sets = {"train": task.train, "test": task.test, **{f"ood:{k}": v for k, v in task.ood.items()}}
    report = shift_report(
        backbone,
        sets,
        cache,
        max_per_set=settings.max_per_set,
        n_permutations=settings.n_permutations,
        seed=settings.seed,
    )
    return public(report), shift_figure(report)


@PREFLIGHT.register("audit")
def audit_check(task, backbone, cache, settings) -> tuple[dict[str, Any], bytes | None] | None:
    from safeadapt.bias import audit

    if task.train.groups is None:
        return None
    return audit(task.train, task.label_names), None


def run_preflight(task, backbone, cache, settings) -> dict[str, Any]:
    """Every enabled check: ``{name: {"result": ..., "figure": png bytes or None}}``."""
    out = {}
    for name in settings.checks:
        res = PREFLIGHT.get(name)(task, backbone, cache, settings)
        if res is not None:
            out[name] = {"result": res[0], "figure": res[1]}
    return out
