"""The shift report as typed results: each test's outcome, each comparison, the whole report.

``ShiftReport.to_json()`` is the layout of ``shift.json`` and of a study's pre-flight ``shift``
entry (unchanged from the dicts of earlier releases); ``ShiftReport.from_json`` reads it back.
A fresh report of ``safeadapt.shift.shift_report`` is a ``shift.report.EmbeddedShiftReport``: this
report with the embeddings its figure is drawn from, rendered with that figure in Jupyter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from safeadapt.results._json import FlatJson


@dataclass(frozen=True)
class MMDResult(FlatJson):
    """The kernel two-sample test (``safeadapt.shift.tests.mmd_test``)."""

    mmd2: float
    p_value: float
    bandwidth: float
    n_permutations: int
    null_mean: float
    null_std: float
    subsampled: dict[str, list[int]] | None  # side -> [kept, of]; None: every point was used


@dataclass(frozen=True)
class ClassifierResult(FlatJson):
    """The domain-classifier test: cross-validated AUROC of telling the sets apart."""

    auroc: float
    p_value: float
    folds: int
    accuracy: float


@dataclass(frozen=True)
class KSResult(FlatJson):
    """Per-dimension KS tests, Benjamini-Hochberg adjusted."""

    dimensions: int
    significant_dimensions: int
    min_adjusted_p_value: float
    max_statistic: float


@dataclass(frozen=True)
class LabelAgreement(FlatJson):
    """A probe fitted on the reference set, scored on the other (``transfer``) against one
    cross-validated there (``own``); the one-sided exact McNemar ``p_value``."""

    transfer: float
    own: float
    only_own_right: int
    only_transfer_right: int
    p_value: float


@dataclass(frozen=True)
class ProbeResult(FlatJson):
    """Cross-validated linear-probe accuracy on the reference set, and the majority rate."""

    accuracy: float
    majority: float
    folds: int


@dataclass(frozen=True)
class Comparison:
    """The reference set against one other set."""

    mmd: MMDResult
    classifier: ClassifierResult
    ks: KSResult
    shift_detected: bool
    effect_size_auroc: float
    typical: dict[str, list[Any]]  # set -> its most typical examples (texts, or image shapes)
    probe: LabelAgreement | None = None  # when the other set has labels of the same task

    def to_json(self) -> dict[str, Any]:
        out = {
            "mmd": self.mmd.to_json(),
            "classifier": self.classifier.to_json(),
            "ks": self.ks.to_json(),
            "shift_detected": self.shift_detected,
            "effect_size_auroc": self.effect_size_auroc,
            "typical": {k: list(v) for k, v in self.typical.items()},
        }
        if self.probe is not None:
            out["probe"] = self.probe.to_json()
        return out

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Comparison:
        probe = raw.get("probe")
        return cls(
            MMDResult.from_json(raw["mmd"]),
            ClassifierResult.from_json(raw["classifier"]),
            KSResult.from_json(raw["ks"]),
            bool(raw["shift_detected"]),
            float(raw["effect_size_auroc"]),
            {k: list(v) for k, v in raw["typical"].items()},
            None if probe is None else LabelAgreement.from_json(probe),
        )


@dataclass(frozen=True)
class ShiftReport:
    """The first set (``reference``) against every other one, the probe on it and the advice."""

    reference: str
    sizes: dict[str, int]
    level: float
    comparisons: dict[str, Comparison]
    probe: ProbeResult | None
    separable: bool | None
    shift_detected: bool
    label_mismatch: tuple[str, ...]
    advice: str

    def to_json(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "sizes": dict(self.sizes),
            "level": self.level,
            "comparisons": {k: c.to_json() for k, c in self.comparisons.items()},
            "probe": None if self.probe is None else self.probe.to_json(),
            "separable": self.separable,
            "shift_detected": self.shift_detected,
            "label_mismatch": list(self.label_mismatch),
            "advice": self.advice,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> ShiftReport:
        probe = raw.get("probe")
        return cls(
            reference=raw["reference"],
            sizes={k: int(v) for k, v in raw["sizes"].items()},
            level=float(raw["level"]),
            comparisons={k: Comparison.from_json(c) for k, c in raw["comparisons"].items()},
            probe=None if probe is None else ProbeResult.from_json(probe),
            separable=raw.get("separable"),
            shift_detected=bool(raw["shift_detected"]),
            label_mismatch=tuple(raw.get("label_mismatch") or ()),
            advice=raw["advice"],
        )

    def without_data(self) -> ShiftReport:
        """The report alone (what is stored), without anything a subclass carries."""
        return ShiftReport(**{f: getattr(self, f) for f in ShiftReport.__dataclass_fields__})
