"""Is a finished study's summary still the study's? Judgements of a finished study (``check``,
``export``) are keyed on content, like its runs.

``summary.json`` records the inputs it was made from (``study_inputs``): the content hashes of
the data and of the backbone's weights, and a hash of every setting that decides a result (each
run's key without the content, the recommendation rule, the pre-flight checks). ``ensure_fresh``
recomputes them from the study file and the data as they are now and refuses, naming what
changed, when they differ: the summary would judge numbers made from other inputs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any, NamedTuple

from safeadapt.results import StudySummary


def _hash(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


class Content(NamedTuple):
    """What the study's results depend on beyond its settings: the data's and the backbone's
    content hashes (a local folder's weights can change under the same name)."""

    data: str
    backbone: str


def content_fingerprints(task, factory, config=None) -> Content:
    """The task's and the backbone's content hashes; with ``config``, the data hash also covers
    the local files of the forgetting family's ``reference_data`` (an edited reference file is
    new content too). Studies without them hash as before."""
    data = task.fingerprint()
    references = reference_fingerprints(config) if config is not None else {}
    if references:
        data = _hash({"task": data, "reference_data": references})
    return Content(data=data, backbone=factory().fingerprint())


def reference_fingerprints(config) -> dict[str, str]:
    """``{name:part: hash}`` of every local file or folder the forgetting family's
    ``reference_data`` names (a ``hub:`` source is keyed by its id and revision, as written)."""
    from safeadapt.files import file_sha256
    from safeadapt.safety.forgetting import reference_data_config

    forgetting = reference_data_config(config)
    out = {}
    for name, part, _, path in forgetting.local_sources() if forgetting else ():
        if path is None:
            continue  # refused before any run (study.validation.check_reference_data)
        if path.is_file():
            out[f"{name}:{part}"] = file_sha256(path)
        else:
            files = sorted(p for p in path.rglob("*") if p.is_file())
            out[f"{name}:{part}"] = _hash([(str(p.relative_to(path)), file_sha256(p))
                                           for p in files])  # fmt: skip
    return out


def study_inputs(config, modality: str, content: Content) -> dict[str, str]:
    """``{data, backbone, settings}`` hashes of what the study's results were made from."""
    from safeadapt.study.plan import expand_runs

    settings = {
        "runs": [(s.run_id.rsplit("-", 1)[0], s.key) for s in expand_runs(config, modality)],
        "recommend": dataclasses.asdict(config.recommend),
        "preflight": dataclasses.asdict(config.preflight),
    }
    return {
        "data": content.data,
        "backbone": content.backbone,
        "settings": _hash(settings),
    }


def current_inputs(config, task=None) -> tuple[dict[str, str], Any]:
    """The study's inputs as they are now (loads the data and fingerprints the backbone)."""
    task = task or config.task.load()
    content = content_fingerprints(task, config.backbone.factory(task.modality), config)
    return study_inputs(config, task.modality, content), task


WHAT = {
    "data": "the data (a file it reads was edited, added or removed)",
    "backbone": "the backbone's weights",
    "settings": "the study's settings (protocols, task, safety, seeds or the recommendation rule)",
}


def ensure_fresh(config, summary: StudySummary, command: str, study_path: str) -> Any:
    """Raise :class:`StaleStudy` unless ``summary`` was made from the study's current inputs;
    returns the loaded task."""
    from safeadapt.errors import StaleStudy

    recorded = summary.inputs
    fix = f"run `safeadapt run {study_path}` first (finished runs whose inputs did not change are reused)"
    if not recorded:
        raise StaleStudy(
            f"{command}: {config.output_dir / 'summary.json'} does not record the inputs it was "
            f"made from (an older safeadapt wrote it); {fix}."
        )
    now, task = current_inputs(config)
    changed = [WHAT[k] for k in ("data", "backbone", "settings") if recorded.get(k) != now[k]]
    if changed:
        raise StaleStudy(
            f"{command}: the study's summary was made from other inputs -- since it was written, "
            f"{' and '.join(changed)} changed; {fix}."
        )
    return task


def fresh_summary(config, command: str, study_path: str) -> tuple[StudySummary, Any]:
    """The finished study's ``summary.json`` and its loaded task -- only when the summary was
    made from the study's current inputs (``ensure_fresh``); otherwise a one-line error with
    the fix."""
    from safeadapt.errors import InvalidConfig

    path = config.output_dir / "summary.json"
    fix = f"(safeadapt run {study_path})"
    if not path.is_file():
        raise InvalidConfig(f"{command}: {path} does not exist: run the study first {fix}.")
    summary = read_summary(path, f"{command}: run the study again {fix}")
    return summary, ensure_fresh(config, summary, command, study_path)


def read_summary(path, fix: str) -> StudySummary:
    """``summary.json`` read as untrusted input: exit 2 (``InvalidConfig``) naming the file and
    what is wrong for anything that does not read as a summary."""
    from safeadapt.errors import InvalidConfig, SafeAdaptError
    from safeadapt.readback import read_object

    try:
        return StudySummary.from_json(read_object(path, fix))
    except SafeAdaptError as err:
        raise InvalidConfig(str(err)) from None
    except (ValueError, KeyError, TypeError, AttributeError, IndexError) as err:
        raise InvalidConfig(f"{path} is not a readable summary ({type(err).__name__}: "
                            f"{str(err)[:100]}); {fix}.") from None  # fmt: skip


__all__ = ["current_inputs", "ensure_fresh", "fresh_summary", "study_inputs"]
