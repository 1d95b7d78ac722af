"""What a protocol reports about its fit, typed where other code reads it.

A run's ``info`` is the protocol's own mapping (its layout belongs to the protocol and is stored
as is in ``record.json``). The parts that code outside the protocol reads -- the report's "what
each knob did", the kept-start note, the WiSE-FT curve, the cost table -- are read through
:class:`FitInfo` (``RunRecord.fit``), a typed view: entries a protocol did not write are
``None`` / empty, and entries only one protocol writes stay in its mapping.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from safeadapt.results._json import plain


def _known(cls: type, raw: dict[str, Any]) -> dict[str, Any]:
    """The entries of ``raw`` that are fields of ``cls`` (a protocol may record more)."""
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: plain(v) for k, v in raw.items() if k in names}


@dataclass(frozen=True)
class StartTest:
    """Fine-tuning's best epoch against its start (epoch 0) on the same validation examples
    (``safeadapt.protocols.start.keep_start_decision``)."""

    test: str
    alpha: float
    start_accuracy: float
    tuned_accuracy: float
    only_start_right: int
    only_tuned_right: int
    p_value: float
    kept_start: bool

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> StartTest:
        return cls(**_known(cls, raw))


@dataclass(frozen=True)
class RegularizerEffect:
    """What a regulariser did: its weight, penalty against the task loss and the ratio of its
    gradient norm to the task's (mid-epoch checks)."""

    name: str
    weight: float
    penalty_to_loss: float
    mean_penalty: float | None = None
    mean_task_loss: float | None = None
    grad_norm_ratio: float | None = None

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> RegularizerEffect:
        return cls(**_known(cls, raw))


@dataclass(frozen=True)
class HeadEffect:
    """What the head an LP-stage protocol trained is (hardened, soup of heads, zero-shot) and
    how it differs from plain LP."""

    method: str
    C: float | None = None
    prompts: list[str] | None = None  # a zero-shot head: the prompts it was built from
    term_to_loss: float | None = None  # VAT / UDP: the hardening term against the task loss
    val_disagreement_with_lp: float | None = None
    weight_norm_standardised: float | None = None
    lp_weight_norm_standardised: float | None = None
    head_pairwise_cosine: float | None = None  # a soup of heads: how different its heads are
    head_pairwise_disagreement: float | None = None

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> HeadEffect:
        return cls(**_known(cls, raw))


OOD_VAL = "ood-val:"  # an alpha point's OOD-validation accuracies: "ood-val:<name>" in the JSON


@dataclass(frozen=True)
class AlphaPoint:
    """One point of WiSE-FT's alpha curve: the mixing weight, its ID-validation accuracy (what
    alpha is chosen on) and the OOD-validation accuracies reported beside it."""

    alpha: float
    val_accuracy: float
    ood_val: dict[str, float] = dataclasses.field(default_factory=dict)  # split name -> accuracy

    def to_json(self) -> dict[str, float]:
        out = {"alpha": self.alpha, "val_accuracy": self.val_accuracy}
        return out | {f"{OOD_VAL}{name}": acc for name, acc in self.ood_val.items()}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> AlphaPoint:
        ood = {k.removeprefix(OOD_VAL): float(v) for k, v in raw.items() if k.startswith(OOD_VAL)}
        return cls(float(raw["alpha"]), float(raw["val_accuracy"]), ood)


@dataclass(frozen=True)
class FitInfo:
    """The cross-protocol entries of a run's ``info`` (see the module docstring)."""

    best_epoch: int | None = None  # fine-tuning: 0 = the start was kept
    start_test: StartTest | None = None
    lp_C: float | None = None  # LP-FT and friends: the LP start's C
    head_init: str | None = None
    head_effect: HeadEffect | None = None
    regularizers: tuple[RegularizerEffect, ...] = ()
    alpha: float | None = None  # WiSE-FT: the mixing weight chosen on ID val
    alpha_curve: tuple[AlphaPoint, ...] = ()
    trainable_parameters: int | None = None

    @property
    def start_name(self) -> str:
        """What the start of fine-tuning was: the LP model, the zero-shot model or the
        pretrained backbone with a fresh head."""
        if self.lp_C is not None:
            return "LP"
        return "zero-shot" if self.head_init else "pretrained"

    @classmethod
    def from_json(cls, info: dict[str, Any]) -> FitInfo:
        start = info.get("start_test")
        effect = info.get("head_effect")
        return cls(
            best_epoch=info.get("best_epoch"),
            start_test=StartTest.from_json(start) if start else None,
            lp_C=info.get("lp_C"),
            head_init=info.get("head_init"),
            head_effect=HeadEffect.from_json(effect) if effect else None,
            regularizers=tuple(
                RegularizerEffect.from_json(r) for r in info.get("regularizers") or ()
            ),
            alpha=info.get("alpha"),
            alpha_curve=tuple(AlphaPoint.from_json(p) for p in info.get("alpha_curve") or ()),
            trainable_parameters=info.get("trainable_parameters"),
        )
