"""OOD rates: the share of the window a detector flags, against the share it flags on reference
rows its threshold was not fitted on (one-sided Fisher exact test, Wilson interval;
``stats.ood_rate``). Every detector scores through the study's own
``safety.detection.fit_scorer``.

Two detectors are fitted at export and carried by every reference (their thresholds in
``reference.json``): the energy of the logits (Liu et al., NeurIPS 2020) and the kNN distance in
the adapted features (Sun et al., ICML 2022), which sees inputs the head is confidently wrong
about (references exported before it: no kNN signal).

``--more-detectors`` adds any other detector of the study's detection family (max softmax, max
logit, Mahalanobis, relative Mahalanobis, ViM), fitted when the monitor starts on the reference's
fit half (its adapted features, labels and logits, and the exported head for ViM), its threshold
flagging ``OOD_FPR`` of that half, its ID rate counted on the other half -- as the built-in two.
The threshold is taken from cross-fitted scores (each of ``FOLDS`` folds of the half scored by
the detector fitted on the others), as the kNN detector's is from leave-one-out distances: a
Mahalanobis detector scores the rows it was fitted on as far more ordinary than new ones (a
384-dimensional covariance from 150 rows), and an in-sample threshold flagged 83 % of new ID
rows. Nothing more is stored in the export, so an export made before this module is monitored
with them too. Each detector is one more test in a window's Bonferroni budget: more detectors, a
stricter level for every test.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from safeadapt.errors import InvalidConfig
from safeadapt.monitor.reference import OOD_FPR
from safeadapt.monitor.signals import stats
from safeadapt.monitor.signals.base import Rate, Signal, Test, Window, register_signal

BUILT_IN = ("energy", "knn")  # fitted at export, in every reference
FOLDS = 5  # the cross-fitting of each threshold
PREFIX = "ood_rate_"


@dataclass(frozen=True)
class OodRateResult:
    test: Test
    rate: Rate


class _OodRate(Signal):
    Result = OodRateResult
    detector = ""

    def measure(self, window: Window) -> OodRateResult:
        scores = self._score(window.adapted, window.logits)
        rate, p = stats.ood_rate(scores, self._threshold, self._flagged, self._n)
        return OodRateResult(Test(rate.rate, p, p <= window.level), rate)

    def settings(self) -> dict[str, Any]:
        return {"detector": self.detector, "fpr": OOD_FPR}

    def rate(self, result: OodRateResult | None) -> Rate | None:
        return result.rate if result else None

    def columns(self, result: OodRateResult | None, window) -> dict[str, Any]:
        r = self.rate(result)
        return {self.name: r.rate if r else None, f"{self.name}_low": r.ci_low if r else None,
                f"{self.name}_high": r.ci_high if r else None}  # fmt: skip

    def text(self, result: OodRateResult | None) -> str | None:
        r = self.rate(result)
        return f"{self.short} {r.rate:.3f} (reference {r.reference_rate:.3f})" if r else None

    @property
    def short(self) -> str:
        return self.detector

    @property
    def column(self) -> str:
        return f"OOD rate ({self.short})"


@register_signal("ood_rate", order=40, alerts=True)
class EnergyRate(_OodRate):
    label = "OOD rate above the reference's (energy score, Fisher exact)"
    detector = "energy"

    def fit(self, reference, head) -> None:
        from safeadapt.safety.detection import fit_scorer

        self._score = fit_scorer("energy", reference.adapted, reference.labels, reference.logits,
                                 head)  # fmt: skip
        self._threshold = reference.ood_threshold
        self._flagged, self._n = reference.ood_reference_flagged, reference.ood_reference_n


@register_signal("ood_rate_knn", order=50, alerts=True)
class KnnRate(_OodRate):
    label = "OOD rate above the reference's (kNN distance in the adapted features)"
    detector = "knn"

    @classmethod
    def applies(cls, reference) -> bool:
        return reference.knn_threshold is not None

    @property
    def short(self) -> str:
        return "kNN"

    def fit(self, reference, head) -> None:
        from safeadapt.safety.detection import fit_scorer

        self._score = fit_scorer("knn", reference.knn_bank(), None, None, head, reference.knn_k)
        self._threshold = reference.knn_threshold
        self._flagged, self._n = reference.knn_reference_flagged, reference.ood_reference_n


@register_signal("ood_rate_more", order=60, alerts=True)
class MoreRate(_OodRate):
    """One instance per detector of ``--more-detectors``, named ``ood_rate_<detector>``."""

    def __init__(self, detector: str) -> None:
        self.detector, self.name = detector, PREFIX + detector
        self.label = f"OOD rate above the reference's ({detector})"

    @classmethod
    def plan(cls, reference, options) -> list[Signal]:
        return [cls(d) for d in check_detectors(options.more_detectors)]

    @classmethod
    def reading(cls, name: str) -> Signal | None:
        rest = name[len(PREFIX) :] if name.startswith(PREFIX) else None
        return cls(rest) if rest in more_detectors() else None

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "folds": FOLDS}

    def fit(self, reference, head) -> None:
        """Fitted on the reference's fit half, the threshold from cross-fitted scores, the rate
        counted on the other half (see the module docstring)."""
        from safeadapt.safety.detection import fit_scorer

        fit, count = (torch.as_tensor(h) for h in reference.halves())
        x, logits = reference.adapted.float(), reference.logits.float()
        labels = np.asarray(reference.labels)
        order = np.random.default_rng(reference.seed).permutation(len(fit))
        crossed = np.empty(len(fit))
        for held in np.array_split(order, FOLDS):
            rest = fit[torch.as_tensor(np.setdiff1d(np.arange(len(fit)), held))]
            part = fit[torch.as_tensor(held)]
            scorer = fit_scorer(self.detector, x[rest], labels[rest.numpy()], logits[rest], head)
            crossed[held] = scorer(x[part], logits[part])
        self._threshold = float(np.quantile(crossed, OOD_FPR))
        self._score = fit_scorer(self.detector, x[fit], labels[fit.numpy()], logits[fit], head)
        self._flagged = int((self._score(x[count], logits[count]) < self._threshold).sum())
        self._n = len(count)


def more_detectors() -> tuple[str, ...]:
    """The detectors ``--more-detectors`` takes: the study's, but for the built-in two."""
    from safeadapt.safety.detection import DETECTORS

    return tuple(d for d in DETECTORS if d not in BUILT_IN)


def check_detectors(names) -> tuple[str, ...]:
    """``names`` as a tuple of distinct known detectors, or a one-line error saying which are."""
    allowed = more_detectors()
    names = tuple(names or ())
    unknown = [n for n in names if n not in allowed]
    if unknown or len(set(names)) != len(names):
        what = f"unknown {unknown}" if unknown else "a detector named twice"
        raise InvalidConfig(
            f"monitor: --more-detectors has {what}; give distinct names from "
            f"{', '.join(allowed)} (energy and knn are always tested)."
        )
    return names
