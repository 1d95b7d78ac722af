"""Export a study's model: a folder with the weights, what rebuilds the model, and a model card.

``export_model(config, out, variant=None, seed=None)`` takes the recommended variant (or the named
one) and its first seed (or the named one) from a finished study that kept its models
(``save_models: true``) and writes:

- ``model.safetensors`` -- the adapted backbone and head (checksummed, never pickle);
- ``safeadapt.json`` -- the backbone spec, classes, protocol and settings, study, task and run;
- ``transformers/`` -- for Hugging Face backbones whose ``transformers`` classification class
  classifies the same features, a ``save_pretrained`` folder with the tokenizer or image
  processor, checked to give the same logits (``safeadapt.study.hf_export``);
- ``README.md`` -- a model card: intended use, protocol, data, the safety table of the variant
  with 95 % intervals, the pre-flight findings and checks, the limits; its front matter carries
  the Hub's ``model-index`` results.

``load_exported(folder)`` rebuilds the :class:`~safeadapt.model.Classifier` (the backbone is built
from its packaged / hub weights, then the exported tensors are loaded over it).
"""

from __future__ import annotations

import dataclasses
import html
import json
import re
import shutil
from pathlib import Path
from typing import Any, NamedTuple

from safeadapt.errors import CheckpointError, InvalidConfig
from safeadapt.monitor.exported import MANIFEST, classifier, load_exported  # noqa: F401
from safeadapt.monitor.members import DEFAULT_MEMBERS, check_ensemble
from safeadapt.results import RunRecord, ScoreSummary, StudySummary, VariantSummary
from safeadapt.results.export import BackboneRef, ExportManifest, MonitorEntry


def _find_run(
    config, summary: StudySummary, variant: str | None, seed: int | None, specs
) -> tuple[str, int, RunRecord, VariantSummary]:
    """The stored run of ``variant`` / ``seed``, found by its content-keyed id as the study
    plans it now (so a run made from other data or settings is never taken)."""
    from safeadapt.study.store import RunStore

    name = variant or summary.recommendation.variant
    variants = {v.variant: v for v in summary.variants}
    if name not in variants:
        raise InvalidConfig(f"export: no variant {name!r}; the study has {', '.join(variants)}.")
    seeds = list(variants[name].seeds)
    seed = seeds[0] if seed is None else seed
    if seed not in seeds:
        raise InvalidConfig(f"export: variant {name!r} ran seeds {seeds}, not {seed}.")
    store = RunStore(config.output_dir)
    for spec in specs:
        if spec.variant == name and spec.seed == seed:
            record = store.load(spec)
            if record is None:
                break
            if not store.has_model(spec):
                raise CheckpointError(
                    f"export: run {spec.run_id} kept no model. Set 'save_models: true' in the "
                    "study and run it again: runs without their model are redone, the rest reused."
                )
            return name, seed, record, variants[name]
    raise InvalidConfig(
        f"export: no stored run of {name!r} seed {seed} under {config.output_dir / 'runs'}; run "
        "the study first."
    )


def export_model(
    config,
    out: str | Path,
    variant: str | None = None,
    seed: int | None = None,
    study_path: str | None = None,
    study_raw: dict[str, Any] | None = None,
    ensemble: int | None = None,
):
    """Write the export folder (see the module docstring); returns its path. The study's summary
    must have been made from its current inputs (``safeadapt.study.freshness``). ``ensemble``:
    the heads the monitoring reference carries for agreement-on-the-line (None: ``DEFAULT_MEMBERS``
    when the study has at least three runs, else none)."""
    import safeadapt
    from safeadapt.files import write_atomic
    from safeadapt.study.freshness import fresh_summary
    from safeadapt.study.store import MODEL

    out = Path(out)
    check_ensemble(ensemble)
    if out.exists() and not out.is_dir():
        raise InvalidConfig(f"export: --out {out} is a file; give a new folder.")
    if out.exists() and any(out.iterdir()):
        raise InvalidConfig(f"export: {out} exists and is not empty; give a new folder.")
    if not out.parent.is_dir():
        raise InvalidConfig(f"export: folder {out.parent} does not exist; create it first.")
    summary, task = fresh_summary(config, "export", study_path or "study.yaml")
    from safeadapt.study.evidence import verified_summary
    from safeadapt.study.runner import planned_runs

    specs = planned_runs(config, task)  # fingerprints data and weights: once, for both uses
    summary = verified_summary(config, summary, task, "export", study_path or "study.yaml",
                               specs)  # fmt: skip
    name, seed, record, entry = _find_run(config, summary, variant, seed, specs)
    run_id = record.run_id
    weights = config.output_dir / "runs" / run_id / MODEL
    _check_weights(weights, record)
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(weights, out / MODEL)
    backbone = config.backbone.resolve(summary.modality)
    manifest = ExportManifest(
        safeadapt=safeadapt.__version__,
        backbone=BackboneRef(backbone.name, dict(backbone.options)),
        label_names=tuple(summary.label_names),
        modality=summary.modality,
        variant=name,
        protocol=record.run.protocol if record.run else record.protocol,
        settings=dict(record.config),
        seed=seed,
        run_id=run_id,
        study=summary.study,
        task=summary.task,
        run_key=record.run.key if record.run else None,
    )
    from safeadapt.study.hf_export import write_transformers

    model = classifier(manifest, out / MODEL)
    manifest = dataclasses.replace(
        manifest,
        transformers=write_transformers(model, list(manifest.label_names), out),
        monitor=write_reference(
            model,
            manifest,
            task,
            config,
            out,
            (DEFAULT_MEMBERS if len(specs) >= 3 else 0) if ensemble is None else ensemble,
        ),  # fmt: skip
    )
    _write_study_record(out, study_path, study_raw)
    manifest = dataclasses.replace(manifest, files=export_files(out))
    write_atomic(out / MANIFEST, json.dumps(manifest.to_json(), indent=1, default=str))
    write_atomic(out / "README.md", model_card(summary, manifest, entry, record, config))
    return out


def _check_weights(weights: Path, record: RunRecord) -> None:
    """The run folder's weights are the run's own: their metadata name its id and content key
    (weights copied in from another run are refused, not shipped under this run's card)."""
    from safeadapt.monitor.exported import weights_disagree

    wrong = weights_disagree(weights, {"run_id": record.run_id,
                                       "key": record.run.key if record.run else None})  # fmt: skip
    if wrong:
        key, held, value = wrong
        raise CheckpointError(
            f"export: {weights} holds the weights of {key} {held!r}, not of this run "
            f"({value!r}): it was copied in from another run. Delete it and run the study "
            "again (save_models: true) to retrain this run."
        )


def export_files(out: Path) -> dict[str, str]:
    """The SHA-256 of each file of the export that safeadapt reads back (weights, monitoring
    reference, study record), keyed by its path relative to ``out``."""
    from safeadapt.files import file_sha256
    from safeadapt.monitor.reference import META, REFERENCE_DIR, TENSORS
    from safeadapt.study.store import MODEL
    from safeadapt.study.suggest import STUDY

    names = (MODEL, f"{REFERENCE_DIR}/{META}", f"{REFERENCE_DIR}/{TENSORS}",
             f"{REFERENCE_DIR}/{STUDY}")  # fmt: skip
    return {name: file_sha256(out / name) for name in names if (out / name).is_file()}


def write_reference(
    model, manifest: ExportManifest, task, config, out: Path, members: int = 0
) -> MonitorEntry:
    """The monitoring reference (``safeadapt.monitor.reference``) under ``out/monitor``, and
    what ``safeadapt monitor`` needs to read production inputs as the study read its data;
    ``members``: the heads of its ensemble for agreement-on-the-line."""
    from safeadapt.monitor import build_reference
    from safeadapt.monitor.exported import pretrained_backbone
    from safeadapt.monitor.reference import REFERENCE_DIR

    base = pretrained_backbone(manifest)
    (reference := build_reference(model, base, task, manifest.seed, members=members)).save(out)
    spec = config.task
    column = "image" if task.modality == "image" else "text"  # built-in tasks: the usual names
    if spec.builtin is None:
        column = spec.image_column or spec.text_column or column
    return MonitorEntry(REFERENCE_DIR, len(reference.labels), column, spec.label_column)


def _write_study_record(out: Path, study_path: str | None, raw: dict[str, Any] | None) -> None:
    """The study's settings and the folder its paths are relative to, for the study a monitor
    suggests after drift (``safeadapt.study.suggest``), read as the study's loader reads it."""
    import os

    from safeadapt.files import write_atomic
    from safeadapt.monitor.reference import REFERENCE_DIR
    from safeadapt.study.config import read_study_file
    from safeadapt.study.suggest import STUDY, study_record

    if raw is None and study_path and Path(study_path).is_file():
        raw = read_study_file(study_path)
    if isinstance(raw, dict):
        write_atomic(out / REFERENCE_DIR / STUDY, study_record(raw, os.getcwd()))


def _transformers_note(manifest: ExportManifest) -> str:
    hf = manifest.transformers
    if not hf.loads:
        return f"No `transformers` folder: {hf.skipped or 'not a Hugging Face backbone'}."
    checked = (
        f"logits checked against the run's on a probe batch: largest difference "
        f"{hf.max_abs_diff:.2g}, tolerance {hf.tolerance if hf.tolerance is not None else 1e-4:g}"
    )
    return f"""With `transformers` alone ({checked}):
```python
from transformers import {hf.auto_class}
model = {hf.auto_class}.from_pretrained("path/to/this/folder/{hf.folder}")
```"""


def _fmt(score: ScoreSummary | None, spec: str = ".3f") -> str:
    if not score:
        return "–"
    text = format(score.mean, spec)
    if score.has_interval:
        plain = spec.lstrip("+")
        text += f" [{format(score.ci_low, plain)}, {format(score.ci_high, plain)}]"
    return text


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#|~])")  # <, >, & and quotes: html.escape


def md(value: Any) -> str:
    """A data- or user-derived string as inert Markdown text: HTML escaped (``<script>``,
    ``<img onerror>``), Markdown punctuation backslash-escaped (links such as
    ``[x](javascript:...)``, emphasis, tables), line breaks folded into spaces (so no value can
    start a ``---`` line, a heading or a list)."""
    text = " ".join(str(value).split())
    text = html.escape(text, quote=True)
    return _MD_SPECIAL.sub(r"\\\1", text)


def _applies_when() -> dict[str, tuple[str, str | None]]:
    """Settings (in a record's flat form) that apply only when another setting has a value
    (``None``: when it is set at all): a tuning or regulariser method's own settings, from the
    one mapping of flat spellings; the zero-shot prompts."""
    from safeadapt.protocols.train_config import CHOICES, FLAT_SPELLINGS

    out: dict[str, tuple[str, str | None]] = {
        flat: (field, None if choice == "*" else choice)
        for flat, (field, choice, _) in FLAT_SPELLINGS.items()
        if field in CHOICES
    }
    return {**out, "prompts": ("head_init", "zero-shot")}


def applicable_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """The settings that acted: those tied to another setting's value only when it has it."""
    out = {}
    applies_when = _applies_when()
    for key, value in settings.items():
        owner, wanted = applies_when.get(key, (None, None))
        if owner is not None and owner in settings:
            have = settings[owner]
            if (wanted is None and have is None) or (wanted is not None and have != wanted):
                continue
        out[key] = value
    return out


def base_model(backbone: str) -> str | None:
    """The Hub id of the model the backbone started from, when there is one (the backbone's
    source says: ``safeadapt.backbones.base_model``)."""
    from safeadapt.backbones import base_model as hub_id

    return hub_id(backbone)


class CardDataset(NamedTuple):
    """A model card's dataset entry for one evaluated split."""

    name: str
    type: str
    split: str


def card_datasets(config, summary: StudySummary) -> dict[str, CardDataset]:
    """Each evaluated split's dataset entry: a built-in task by its name, a file by its file
    name, a hub source by its id."""
    spec = config.task if config is not None else None

    def named(source: str | None, fallback: str) -> str:
        from safeadapt.data.disk import saved_folder

        if not source:
            return fallback
        folder, _ = saved_folder(source)  # a save_to_disk folder, with or without :<split>
        if folder is not None:
            return folder.name or fallback
        if source.startswith("hub:"):
            return source.removeprefix("hub:").split(":")[0].split("?")[0]
        return Path(source).name or fallback

    out = {}
    for split in summary.splits:
        source = None
        if spec is not None and not spec.builtin:
            source = spec.test if split == "test" else spec.ood.get(split.removeprefix("ood:"))
        base = spec.builtin if spec is not None and spec.builtin else summary.task
        name = named(source, base)
        out[split] = CardDataset(name, name, split.removeprefix("ood:"))
    return out


def card_metadata(summary: StudySummary, manifest: ExportManifest, entry: VariantSummary,
                  task_type: str, config=None):  # fmt: skip
    """The Hub's card metadata (``huggingface_hub.ModelCardData``): ``base_model``,
    ``pipeline_tag``, ``library_name`` (``transformers`` when the export has a folder that
    loads with it) and one ``model-index`` result per evaluated split with its own dataset."""
    from huggingface_hub import EvalResult, ModelCardData

    scores = entry.scores
    datasets = card_datasets(config, summary)
    results = []

    def add(split: str, key: str, kind: str, name: str) -> None:
        if key in scores and split in datasets:
            ds = datasets[split]
            results.append(
                EvalResult(
                    task_type=task_type, dataset_type=ds.type, dataset_name=ds.name,
                    dataset_split=ds.split, metric_type=kind, metric_name=name,
                    metric_value=round(scores[key].mean, 4),
                )
            )  # fmt: skip

    add("test", "id_accuracy", "accuracy", "ID test accuracy")
    add("test", "ece", "ece", "ID test expected calibration error")
    add("test", "worst_group_accuracy", "accuracy", "worst-group accuracy (ID test)")
    add("test", "forgetting", "forgetting", "concept forgetting (probe accuracy after - before)")
    for split in summary.ood_splits():
        add(
            split,
            f"accuracy:{split}",
            "accuracy",
            f"OOD test accuracy ({split.removeprefix('ood:')})",
        )
    return ModelCardData(
        model_name=f"{summary.study}-{manifest.variant}",
        base_model=base_model(manifest.backbone.name),
        library_name="transformers" if manifest.transformers.loads else "safeadapt",
        pipeline_tag=task_type,
        tags=["safeadapt", summary.modality, manifest.protocol],
        eval_results=results or None,
    )


def model_card(
    summary: StudySummary,
    manifest: ExportManifest,
    entry: VariantSummary,
    record: RunRecord | None = None,
    config=None,
) -> str:
    """The model card (Markdown with the Hub's metadata and ``model-index`` front matter, see
    :func:`card_metadata`). Every string that comes from data or settings is escaped
    (:func:`md`); the front matter is written by ``huggingface_hub`` (YAML-quoted)."""

    from safeadapt.report.columns import table_columns

    scores = entry.scores
    task_type = "text-classification" if summary.modality == "text" else "image-classification"
    front = card_metadata(summary, manifest, entry, task_type, config).to_yaml()
    only_this = dataclasses.replace(summary, variants=(entry,))
    rows = "\n".join(
        f"| {md(c.header)} | {_fmt(scores.get(c.key), c.fmt)} |" for c in table_columns(only_this)
    )
    rec = summary.recommendation
    picked = (
        f"It is the study's recommendation: {md(rec.reason)}"
        if rec.variant == manifest.variant
        else f"It is not the study's recommendation ({md(rec.variant)})."
    )
    preflight = []
    shift = summary.preflight.shift
    if shift is not None:
        preflight.append(f"- Shift: {md(shift.advice)}")
    audit = summary.preflight.audit
    if audit is not None:
        preflight += [f"- Audit: {md(flag)}" for flag in audit.flags] or ["- Audit: no flags."]
    checks = summary.checks
    check_lines = (
        [
            f"- {md(c.name)}: {md(c.value)} (bound {md(c.bound)}) -> "
            f"{'pass' if c.passed else 'FAIL'}"
            for c in checks.checks
        ]  # fmt: skip
        if checks
        else ["- none configured"]
    )
    applied = applicable_settings(manifest.settings)
    settings = ", ".join(f"{md(k)}={md(v)}" for k, v in applied.items()) or "defaults"
    from safeadapt.protocols.start import kept_start_note

    kept = kept_start_note(record) if record else None
    kept_line = f"\n\n**Note: {md(kept)}.**" if kept else ""
    return f"""---
{front.strip()}
---

# {md(summary.study)}: {md(manifest.variant)}

A {md(summary.modality)} classifier adapted from {md(manifest.backbone.name)} with
**{md(manifest.protocol)}** by [safeadapt](https://pypi.org/project/safeadapt/) {md(manifest.safeadapt)},
on {md(summary.task)} (classes: {", ".join(md(n) for n in manifest.label_names)}); seed
{md(manifest.seed)} of {len(entry.seeds)}. {picked}{kept_line}

## How to load
```python
from safeadapt.study.export import load_exported
model = load_exported("path/to/this/folder")   # a safeadapt Classifier (torch.nn.Module)
logits = model(model.backbone.preprocess(inputs))
```
{_transformers_note(manifest)}

## Safety and accuracy (mean over seeds, [95 % interval])
| score | value |
|---|---|
{rows}

Selection used validation data only; test numbers were scored once. Split sizes:
{", ".join(f"{md(k)} {md(v)}" for k, v in summary.sizes.items())}.

## Pre-flight findings
{chr(10).join(preflight) or "- none run"}

## Checks
{chr(10).join(check_lines)}

## Limits
- Measured on the splits above; other data may behave differently. OOD splits are the study's,
  not every shift the model will meet.
- Settings: {settings}.
{chr(10).join(f"- {md(note)}" for note in summary.notes)}
"""
