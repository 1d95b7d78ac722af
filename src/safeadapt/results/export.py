"""What an export folder says about itself (``safeadapt.json``, written by ``safeadapt export``).

``ExportManifest.to_json()`` is the layout of ``safeadapt.json`` (unchanged from the dicts of
earlier releases); ``from_json`` reads it, including folders exported before the ``transformers``
and ``monitor`` entries existed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from safeadapt.errors import DataError
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
    # the run's content key (the weights' metadata carries it too) and the SHA-256 of each file
    # of the export (relative path -> hex): the export is one unit; exports before: None / {}
    run_key: str | None = None
    files: dict[str, str] = field(default_factory=dict)

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
        if self.run_key is not None:
            out["run_key"] = self.run_key
        if self.files:
            out["files"] = dict(self.files)
        return out

    @classmethod
    def from_json(cls, raw: Any, where: str = "safeadapt.json") -> ExportManifest:
        """The manifest of ``raw``, read strictly (:mod:`safeadapt.readback`): a missing,
        unknown or mistyped entry, an unknown modality, label names that are empty, repeated
        or disagree with ``num_classes`` -- each a ``DataError`` naming ``where`` and the key."""
        from safeadapt.readback import typed_fields

        fix = "export the model again (safeadapt export STUDY --out NEW_FOLDER)"
        if not isinstance(raw, dict):
            raise DataError(f"{where} must be a JSON object; {fix}.")
        count, listed = raw.get("num_classes"), raw.get("label_names")
        held = len(listed) if isinstance(listed, list) else None
        if count is not None and (type(count) is not int or (held is not None and count != held)):
            raise DataError(f"{where}: num_classes is {count!r} but label_names holds {held} "
                            f"names; {fix}.")  # fmt: skip
        body = {"settings": {}, **{k: v for k, v in raw.items() if k != "num_classes"}}
        values = typed_fields(cls, body, where, fix)
        names = values["label_names"]
        check_label_names(names, where)
        if values["modality"] not in MODALITIES:
            raise DataError(f"{where}: modality {values['modality']!r} is not one safeadapt "
                            f"monitors ({', '.join(MODALITIES)}); {fix}.")  # fmt: skip
        for name, digest in values.get("files", {}).items():
            if (
                "\\" in name
                or name.startswith("/")
                or ".." in name.split("/")
                or not (len(digest) == 64 and all(c in "0123456789abcdef" for c in digest))
            ):
                raise DataError(f"{where}: files entry {name!r} is not a file of the export "
                                f"with its SHA-256; {fix}.")  # fmt: skip
        return cls(**values)


MODALITIES = ("text", "image")
MAX_LABEL = 200  # characters of a label name


def check_label_names(names: tuple[str, ...], where: str) -> None:
    """Label names read back: at least two, each a non-empty text of at most ``MAX_LABEL``
    characters, all different once case and spacing are folded (as the task's labels are
    matched) and in the normal form of Unicode (look-alike spellings are not two classes)."""
    from safeadapt.readback import skeleton

    if len(names) < 2:
        raise DataError(f"{where}: label_names must hold at least 2 names; got {len(names)}.")
    folded: dict[str, str] = {}
    for name in names:
        if not name.strip() or len(name) > MAX_LABEL or not name.isprintable():
            raise DataError(f"{where}: label name {name[:40]!r} must be a printable, non-empty "
                            f"text of at most {MAX_LABEL} characters.")  # fmt: skip
        key = skeleton(name)
        if key in folded:
            raise DataError(f"{where}: label names {folded[key]!r} and {name!r} name one "
                            "class twice.")  # fmt: skip
        folded[key] = name
