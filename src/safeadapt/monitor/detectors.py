"""More OOD detectors for the monitor's OOD-rate tests: any other detector of the study's
detection family (``safety.detection``: max softmax, max logit, Mahalanobis, relative
Mahalanobis, ViM), beside the two every reference carries (the energy of the logits and the kNN
distance of the adapted features, fitted at export).

Each is fitted when the monitor starts, on the reference's fit half (its adapted features,
labels and logits, and the exported head for ViM), its threshold flagging ``OOD_FPR`` of that
half, its ID rate counted on the other half -- as the reference's own two are. The threshold is
taken from cross-fitted scores (each of ``FOLDS`` folds of the half scored by the detector fitted
on the others), as the kNN detector's is from leave-one-out distances: a Mahalanobis detector
scores the rows it was fitted on as far more ordinary than new ones (a 384-dimensional
covariance from 150 rows), and an in-sample threshold flagged 83 % of new ID rows. Nothing more is
stored in the export, so an export made before this module is monitored with them too. Each
detector is one more test in a window's Bonferroni budget: more detectors, a stricter level for
every test.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from safeadapt.errors import InvalidConfig
from safeadapt.monitor.reference import OOD_FPR, Reference

BUILT_IN = ("energy", "knn")  # fitted at export, in every reference
FOLDS = 5  # the cross-fitting of each threshold


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


@dataclass(frozen=True)
class FittedDetector:
    """One detector fitted on the reference: its scores (low = unlike ID), the threshold
    flagging ``OOD_FPR`` of the fit half, and how many of the other half it flags."""

    name: str
    score: Callable[[Tensor, Tensor], np.ndarray]
    threshold: float
    reference_flagged: int
    reference_n: int


def fit_detectors(
    reference: Reference, names: tuple[str, ...], head: tuple[Tensor, Tensor]
) -> tuple[FittedDetector, ...]:
    """Each of ``names`` fitted on the reference's fit half (see the module docstring)."""
    from safeadapt.safety.detection import fit_scorer

    fit, count = (torch.as_tensor(h) for h in reference.halves())
    x, logits = reference.adapted.float(), reference.logits.float()
    labels = np.asarray(reference.labels)
    folds = np.array_split(np.random.default_rng(reference.seed).permutation(len(fit)), FOLDS)
    out = []
    for name in names:
        crossed = np.empty(len(fit))
        for held in folds:
            rest = fit[torch.as_tensor(np.setdiff1d(np.arange(len(fit)), held))]
            part = fit[torch.as_tensor(held)]
            scorer = fit_scorer(name, x[rest], labels[rest.numpy()], logits[rest], head)
            crossed[held] = scorer(x[part], logits[part])
        threshold = float(np.quantile(crossed, OOD_FPR))
        scorer = fit_scorer(name, x[fit], labels[fit.numpy()], logits[fit], head)
        flagged = int((scorer(x[count], logits[count]) < threshold).sum())
        out.append(FittedDetector(name, scorer, threshold, flagged, len(count)))
    return tuple(out)
