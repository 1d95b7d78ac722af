"""Pre-flight checks a study runs before any training, registered by name (adding one is one
function here): ``shift`` (train vs test vs each OOD split in embedding space) and ``audit``
(group representation and label-group association of the training set, when it has groups)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from safeadapt._registry import Registry
from safeadapt.files import write_atomic
from safeadapt.results.preflight import Preflight, read_check


@dataclass(frozen=True)
class CheckOutput:
    """One pre-flight check's result (a typed result with ``to_json``, or JSON) and figure."""

    result: Any
    figure: bytes | None = None


# name -> fn(task, backbone, cache, settings) -> CheckOutput, or None when it does not apply
Check = Callable[..., CheckOutput | None]
PREFLIGHT: Registry[Check] = Registry("pre-flight check")


@PREFLIGHT.register("shift")
def shift_check(task, backbone, cache, settings) -> CheckOutput:
    from safeadapt.shift import shift_figure, shift_report

    sets = {"train": task.train, "test": task.test, **{f"ood:{k}": v for k, v in task.ood.items()}}
    report = shift_report(
        backbone,
        sets,
        cache,
        max_per_set=settings.max_per_set,
        n_permutations=settings.n_permutations,
        seed=settings.seed,
    )
    return CheckOutput(report.without_data(), shift_figure(report))


@PREFLIGHT.register("audit")
def audit_check(task, backbone, cache, settings) -> CheckOutput | None:
    from safeadapt.bias import audit

    if task.train.groups is None:
        return None
    return CheckOutput(audit(task.train, task.label_names))


def run_preflight(task, backbone, cache, settings) -> dict[str, CheckOutput]:
    """Every enabled check that applies, by name."""
    out = {}
    for name in settings.checks:
        res = PREFLIGHT.get(name)(task, backbone, cache, settings)
        if res is not None:
            out[name] = res
    return out


def results_of(checks: dict[str, CheckOutput]) -> Preflight:
    """The checks' results, as a study's summary holds them."""
    return Preflight({k: v.result for k, v in checks.items()})


def stored_preflight(
    config: Any, task, factory, cache, out, log, content
) -> dict[str, CheckOutput]:
    """Run (or reload) the pre-flight checks; stored atomically like runs, keyed by content."""
    import base64
    import hashlib

    from safeadapt import distributed
    from safeadapt.shift.report import VERSION
    from safeadapt.study.preflight import run_preflight

    if not config.preflight.checks:
        return {}
    key = hashlib.sha256(
        json.dumps(
            [
                config.task.key_form(),
                dataclasses.asdict(config.backbone.resolve(task.modality)),
                dataclasses.asdict(config.preflight),
                content,
                VERSION,
            ],
            sort_keys=True,
            default=str,
        ).encode()
    ).hexdigest()[:16]
    path = out / "preflight.json"
    reused = _load_stored(path, key) if distributed.is_main() else None
    reused = distributed.broadcast(reused)  # several processes: all reuse, or all compute
    if reused is not None:
        return reused
    log(f"pre-flight checks: {', '.join(config.preflight.checks)}")
    checks = run_preflight(task, factory(), cache, config.preflight)
    if not distributed.is_main():
        return checks
    found = results_of(checks)
    shift, audit = found.shift, found.audit
    if shift is not None:
        log(f"shift: {'detected' if shift.shift_detected else 'not detected'}; {shift.advice}")
    if audit is not None and audit.flags:
        log("audit: " + "; ".join(audit.flags))
    for name, v in checks.items():
        if v.figure:
            (out / f"{name}.png").write_bytes(v.figure)
    payload = {
        "key": key,
        "checks": {
            k: {
                "result": v.result.to_json() if hasattr(v.result, "to_json") else v.result,
                "figure": base64.b64encode(v.figure).decode() if v.figure else None,
            }
            for k, v in checks.items()
        },
    }
    write_atomic(path, json.dumps(payload, indent=1, default=float))
    return checks


def _load_stored(path, key: str) -> dict[str, CheckOutput] | None:
    """The stored pre-flight results if they were computed for ``key``."""
    import base64

    if not path.is_file():
        return None
    try:
        stored = json.loads(path.read_text())
        if stored.get("key") != key:
            return None
        return {
            k: CheckOutput(
                read_check(k, v["result"]),
                base64.b64decode(v["figure"]) if v["figure"] else None,
            )
            for k, v in stored["checks"].items()
        }
    except (ValueError, KeyError, TypeError, OSError):
        return None  # recompute
