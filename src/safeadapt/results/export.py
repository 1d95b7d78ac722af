"""What an export folder says about itself (``safeadapt.json``, written by ``safeadapt export``).

``ExportManifest.to_json()`` is the layout of ``safeadapt.json`` (unchanged from the dicts of
earlier releases); ``from_json`` reads it, including folders exported before the ``transformers``
and ``monitor`` entries existed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from safeadapt.results._json import plain


@dataclass(frozen=True)
class BackboneRef:
    """The backbone the export was adapted from: its name (or ``hf:`` / ``module:`` spec) and
    the options it was built with."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)

    def build_options(self) -> dict[str, Any]:
        """The options that rebuild the pretrained backbone (the exported tensors follow, so a
        ``weights`` option is left out)."""
        return {k: v for k, v in self.options.items() if k != "weights"}


@dataclass(frozen=True)
class TransformersExport:
    """The ``transformers`` folder of the export, or why there is none (``skipped``)."""

    folder: str | None = None
    auto_class: str | None = None
    max_abs_diff: float | None = None  # between its logits and the run's, on a probe batch
    tolerance: float | None = None
    skipped: str | None = None

    @property
    def loads(self) -> bool:
        return self.folder is not None

    def to_json(self) -> dict[str, Any]:
        if self.folder is None:
            return {"skipped": self.skipped}
        return {
            "folder": self.folder,
            "auto_class": self.auto_class,
            "max_abs_diff": self.max_abs_diff,
            "tolerance": self.tolerance,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any] | None) -> TransformersExport:
        raw = raw or {}
        return cls(
            folder=raw.get("folder"),
            auto_class=raw.get("auto_class"),
            max_abs_diff=raw.get("max_abs_diff"),
            tolerance=raw.get("tolerance"),
            skipped=raw.get("skipped"),
        )


@dataclass(frozen=True)
class MonitorEntry:
    """Where the monitoring reference is and how production inputs are read (the study's own
    column names)."""

    reference: str
    rows: int
    input_column: str
    label_column: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "rows": self.rows,
            "input_column": self.input_column,
            "label_column": self.label_column,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> MonitorEntry:
        return cls(
            reference=str(raw["reference"]),
            rows=int(raw["rows"]),
            input_column=str(raw["input_column"]),
            label_column=raw.get("label_column"),
        )


@dataclass(frozen=True)
class ExportManifest:
    """An export folder's description: the model (backbone, classes), how it was adapted
    (variant, protocol, settings, seed, run) and from what (study, task)."""

    safeadapt: str
    backbone: BackboneRef
    label_names: tuple[str, ...]
    modality: str
    variant: str
    protocol: str
    settings: dict[str, Any]
    seed: int
    run_id: str
    study: str
    task: str
    transformers: TransformersExport = field(default_factory=TransformersExport)
    monitor: MonitorEntry | None = None

    @property
    def num_classes(self) -> int:
        return len(self.label_names)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "safeadapt": self.safeadapt,
            "backbone": {"name": self.backbone.name, "options": plain(self.backbone.options)},
            "num_classes": self.num_classes,
            "label_names": list(self.label_names),
            "modality": self.modality,
            "variant": self.variant,
            "protocol": self.protocol,
            "settings": plain(self.settings),
            "seed": self.seed,
            "run_id": self.run_id,
            "study": self.study,
            "task": self.task,
            "transformers": self.transformers.to_json(),
        }
        if self.monitor is not None:
            out["monitor"] = self.monitor.to_json()
        return out

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> ExportManifest:
        """The manifest of ``raw`` (``KeyError`` / ``ValueError`` / ``TypeError`` when an entry
        is missing or of the wrong kind; the reader turns them into one message)."""
        names = tuple(str(n) for n in raw["label_names"])
        if int(raw.get("num_classes", len(names))) != len(names):
            raise ValueError(f"num_classes {raw['num_classes']} but {len(names)} label names")
        backbone = raw["backbone"]
        monitor = raw.get("monitor")
        return cls(
            safeadapt=str(raw["safeadapt"]),
            backbone=BackboneRef(str(backbone["name"]), dict(backbone.get("options") or {})),
            label_names=names,
            modality=str(raw["modality"]),
            variant=str(raw["variant"]),
            protocol=str(raw["protocol"]),
            settings=dict(raw.get("settings") or {}),
            seed=int(raw["seed"]),
            run_id=str(raw["run_id"]),
            study=str(raw["study"]),
            task=str(raw["task"]),
            transformers=TransformersExport.from_json(raw.get("transformers")),
            monitor=None if monitor is None else MonitorEntry.from_json(monitor),
        )
