"""Stored evidence cannot pass a gate by being edited.

A results folder is restored from a CI cache or committed in a pull request, so ``check`` and
``export`` read it as untrusted input, at two levels:

**Consistency (always).** :func:`record_agrees` recomputes a run's prediction metrics from its
own ``predictions.parquet`` (accuracy exactly, Brier to ``TOLERANCE``, the difference float32
probabilities make; ECE and NLL are not recomputed: a confidence on a bin edge, or a probability
that underflows in float32, would make an honest record disagree) and :func:`verified_summary` recomputes every variant's
scores from the stored records and predictions, as ``run`` made them, and refuses a
``summary.json`` that disagrees. A record that disagrees with its predictions is not reused by
``run`` (the run is redone). What this proves: the numbers a check reads are the ones the stored
predictions and records give. It cannot prove those were not rewritten together.

**Provenance (with a key).** With ``SAFEADAPT_SIGNING_KEY`` set (from the environment, never from
the study), ``run`` writes ``evidence.sig``: an HMAC-SHA256, under that key, over the SHA-256 of
every piece of evidence (each run's record, predictions and weights, the summary, the combined
predictions, the resolved study). ``check`` and ``export`` with the key set refuse a folder
whose signature is missing or does not match: only a holder of the key made these files.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from safeadapt.errors import DataError

KEY_ENV = "SAFEADAPT_SIGNING_KEY"
SIGNATURE = "evidence.sig"
TOLERANCE = 1e-4  # float metrics from float32 probabilities against the record's float64 ones
RECOMPUTED = ("accuracy", "brier")


def split_metrics(probs: np.ndarray, labels: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """The ``RECOMPUTED`` metrics of a split from its stored predictions: accuracy, and the
    multi-class Brier score (``safeadapt.metrics.calibration.brier``'s definition)."""
    labels = np.asarray(labels, dtype=np.int64)
    if not len(labels) or labels.min() < 0 or labels.max() >= probs.shape[1]:
        return {}
    onehot = np.eye(probs.shape[1])[labels]
    return {"accuracy": float(np.mean(pred == labels)),
            "brier": float(((probs - onehot) ** 2).sum(1).mean())}  # fmt: skip


def record_agrees(record, frame) -> str | None:
    """``None`` when every prediction metric of ``record`` agrees with its predictions ``frame``
    (a pandas frame as stored); otherwise what disagrees, in one line."""
    from safeadapt.results.predictions import RunPredictions

    if frame is None:
        return None  # no predictions kept: nothing to recompute from (said by the caller)
    try:
        outputs = RunPredictions.from_frame(frame)
    except (ValueError, KeyError, TypeError) as err:
        return f"its predictions are not readable ({err})"
    for name, metrics in {**record.metrics, **record.selection}.items():
        part = outputs.splits.get(name)
        if part is None:
            continue
        pred, probs = np.asarray(part.pred), np.asarray(part.probs, dtype=np.float64)
        if probs.ndim != 2 or len(probs) != len(pred) or not np.array_equal(
                pred, probs.argmax(1)):  # fmt: skip
            return f"split {name}: the stored predictions are not the argmax of their probabilities"
        now = split_metrics(probs, np.asarray(part.label), pred)
        for metric in RECOMPUTED:
            stored, fresh = metrics.get(metric), now.get(metric)
            if stored is None or fresh is None:
                continue
            tol = 1e-12 if metric == "accuracy" else TOLERANCE
            if not abs(float(stored) - fresh) <= tol:
                return (f"split {name}: {metric} is {float(stored):.6g} in the record but "
                        f"{fresh:.6g} from its predictions")  # fmt: skip
    return None


def verified_summary(config, summary, task, command: str, study_path: str, specs=None):
    """``summary`` (read from ``summary.json``), checked against the stored evidence: every run
    the study plans is stored and agrees with its predictions; every variant's scores and the
    recommendation, recomputed from them, equal the summary's (to ``TOLERANCE``) -- the
    bootstrap intervals of the safety families only for the scores ``check`` reads (those are
    the costly part: seconds a variant). ``DataError`` naming the first disagreement otherwise.
    With a signing key in the environment, the signature first. ``specs``: the study's planned
    runs when the caller has them (planning fingerprints the data and the weights)."""
    from safeadapt.results.predictions import RunPredictions
    from safeadapt.study.store import RunStore

    fix = f"run the study again (safeadapt run {study_path})"
    out = Path(config.output_dir)
    if signing_key() is not None:
        check_signature(out, command)
    store = RunStore(out)
    runs, outputs = [], {}
    for spec in specs if specs is not None else _planned(config, task):
        record = store.load(spec, move_aside=False)
        if record is None:
            raise DataError(f"{command}: run {spec.run_id} of the summary is not stored (or its "
                            f"record.json does not read as its record); {fix}.")  # fmt: skip
        frame = store.load_predictions(spec)
        wrong = record_agrees(record, frame)
        if wrong:
            raise DataError(f"{command}: {store.folder(spec) / 'record.json'} disagrees with its "
                            f"own predictions ({wrong}): it was edited; {fix}.")  # fmt: skip
        runs.append(record)
        outputs[spec.run_id] = None if frame is None else RunPredictions.from_frame(frame)
    fresh = _summarize(runs, config, task, outputs, families=())
    if fresh.recommendation.variant == summary.recommendation.variant:
        _compare(summary, fresh, command, fix, intervals=False)
    else:  # the verdict may read a family's intervals: judge on the whole recomputation
        _compare(summary, _summarize(runs, config, task, outputs, None), command, fix, True)
    gate = config.checks if command == "check" else None
    if gate is not None and gate.bounds:
        from safeadapt.study.variants import aggregate

        name = summary.recommendation.variant if gate.variant == "recommended" else gate.variant
        mine = [r for r in runs if r.variant == name]
        keys = {b.partition("_")[2] for b in gate.bounds}
        checked = aggregate(mine, outputs, _owners(keys)) if mine else []
        for candidate in checked:
            _compare_variant(summary, candidate.summary, command, fix, keys)
    return summary


def _planned(config, task):
    from safeadapt.study.freshness import content_fingerprints
    from safeadapt.study.plan import expand_runs

    content = content_fingerprints(task, config.backbone.factory(task.modality), config)
    return expand_runs(config, task.modality, content)


def _summarize(runs, config, task, outputs, families):
    from safeadapt.study.recommend import summarize

    return summarize(runs, config, task, outputs, families)


def _owners(keys: set[str]) -> set[str] | None:
    """The safety families whose scores include ``keys`` (``None``: a key no family declares,
    e.g. a per-split one: every family)."""
    from safeadapt.safety.base import FAMILIES

    owners, found = set(), set()
    for name in FAMILIES.in_order():
        declared = set(FAMILIES.get(name).SCORES)
        if declared & keys:
            owners.add(name)
            found |= declared & keys
    from safeadapt.results import SCORES

    rest = keys - found - set(SCORES)
    return None if rest else owners


def _compare(summary, fresh, command: str, fix: str, intervals: bool) -> None:
    """Every variant of ``fresh`` against ``summary``: means, spreads and counts always; the
    intervals too where ``fresh`` computed them (``intervals=False``: not the safety families',
    which ``fresh`` left out)."""
    from safeadapt.safety import score_columns

    family_keys = {key for key, *_ in score_columns()}
    for variant in fresh.variants:
        skip = set() if intervals else family_keys
        _compare_variant(summary, variant, command, fix, None, skip)
    if fresh.recommendation.variant != summary.recommendation.variant:
        raise DataError(f"{command}: summary.json recommends {summary.recommendation.variant!r}, "
                        f"its stored runs {fresh.recommendation.variant!r}; {fix}.")  # fmt: skip


def _compare_variant(summary, variant, command: str, fix: str, keys=None, skip=frozenset()):
    stored = {v.variant: v for v in summary.variants}
    mine = stored.get(variant.variant)
    if mine is None:
        raise DataError(f"{command}: summary.json has no variant {variant.variant!r} that the "
                        f"stored runs give; {fix}.")  # fmt: skip
    for key, score in variant.scores.items():
        if keys is not None and key not in keys:
            continue
        theirs = mine.scores.get(key)
        if theirs is None or not _close(score, theirs, key not in skip):
            value = "nothing" if theirs is None else f"{theirs.mean:.6g}"
            raise DataError(
                f"{command}: summary.json says {key} of {variant.variant!r} is {value} (with its "
                f"interval), but its stored runs give {score.mean:.6g}: the summary was edited "
                f"or belongs to other runs; {fix}."
            )


def _close(a, b, intervals: bool = True) -> bool:
    pairs = [(a.mean, b.mean), (a.std, b.std), (float(a.n), float(b.n))]
    if intervals:
        pairs += [(a.ci_low, b.ci_low), (a.ci_high, b.ci_high), (a.seed_ci_low, b.seed_ci_low),
                  (a.seed_ci_high, b.seed_ci_high)]  # fmt: skip
    for x, y in pairs:
        if x is None or y is None:
            if (x is None) != (y is None):
                return False
            continue
        if math.isnan(x) and math.isnan(y):
            continue
        if not abs(x - y) <= TOLERANCE:
            return False
    return True


# --- signing ---


def signing_key() -> bytes | None:
    """The key from ``SAFEADAPT_SIGNING_KEY`` (``None`` when unset or empty)."""
    value = os.environ.get(KEY_ENV, "")
    return value.encode() if value else None


def evidence_files(out: Path) -> dict[str, str]:
    """SHA-256 of every file that is evidence of the study (relative path -> hex)."""
    from safeadapt.files import file_sha256

    names = ["study.json", "summary.json", "predictions.parquet"]
    runs = Path(out) / "runs"
    if runs.is_dir():
        for folder in sorted(p for p in runs.iterdir() if p.is_dir()):
            for name in ("record.json", "predictions.parquet", "model.safetensors"):
                names.append(f"runs/{folder.name}/{name}")
    return {n: file_sha256(Path(out) / n) for n in names if (Path(out) / n).is_file()}


def _mac(key: bytes, files: dict[str, str]) -> str:
    payload = json.dumps(files, sort_keys=True).encode()
    return hmac.new(key, payload, hashlib.sha256).hexdigest()


def sign(out: Path) -> Path | None:
    """Write ``evidence.sig`` over the study's evidence when a key is set; its path."""
    from safeadapt.files import write_atomic

    key = signing_key()
    if key is None:
        return None
    files = evidence_files(out)
    body = {"algorithm": "HMAC-SHA256", "files": files, "mac": _mac(key, files)}
    write_atomic(Path(out) / SIGNATURE, json.dumps(body, indent=1))
    return Path(out) / SIGNATURE


def check_signature(out: Path, command: str) -> None:
    """Refuse unless ``evidence.sig`` is present, made with this key and every file it covers
    is unchanged (and no evidence file was added)."""
    from safeadapt.readback import read_object

    key = signing_key()
    assert key is not None
    path = Path(out) / SIGNATURE
    fix = (f"run the study again with the key set, or unset {KEY_ENV} to check consistency "
           "only")  # fmt: skip
    if not path.is_file():
        raise DataError(f"{command}: {KEY_ENV} is set but {path} does not exist: the evidence "
                        f"is unsigned; {fix}.")  # fmt: skip
    body: dict[str, Any] = read_object(path, fix)
    files, mac = body.get("files"), body.get("mac")
    if not isinstance(files, dict) or not isinstance(mac, str):
        raise DataError(f"{command}: {path} is not a signature safeadapt wrote; {fix}.")
    if not hmac.compare_digest(_mac(key, {str(k): str(v) for k, v in files.items()}), mac):
        raise DataError(f"{command}: {path} was not made with this signing key (or was "
                        f"edited); {fix}.")  # fmt: skip
    now = evidence_files(out)
    for name in sorted(set(files) | set(now)):
        if files.get(name) != now.get(name):
            state = ("added" if name not in files else "removed" if name not in now
                     else "changed")  # fmt: skip
            raise DataError(f"{command}: {Path(out) / name} was {state} after the evidence "
                            f"was signed; {fix}.")  # fmt: skip
