"""OOD detection from the logits and features safeadapt already has (no extra backbone pass).

Each detector gives an "ID-ness" score (higher = more in-distribution), fitted on the ID
**validation** features (held-out ID data every protocol has; never test):

- ``msp`` -- max softmax probability (Hendrycks & Gimpel 2017);
- ``max_logit`` -- max logit (Hendrycks et al. 2022, "Scaling OOD detection");
- ``energy`` -- ``logsumexp_k z_k`` (Liu et al. 2020);
- ``knn`` -- minus the distance to the k-th nearest ID feature after L2 normalisation
  (Sun, Ming, Zhu & Li, ICML 2022; k = 50 in the paper for ImageNet-scale ID sets, capped here at
  a tenth of the fit set);
- ``mahalanobis`` -- minus the smallest Mahalanobis distance to a class mean under the tied
  covariance (Lee, Lee, Lee & Shin, NeurIPS 2018; on the penultimate features, no input
  preprocessing);
- ``relative_mahalanobis`` -- the class distance minus the distance under one Gaussian of all ID
  features (Ren et al. 2021), which removes the shared "background" term;
- ``vim`` -- virtual-logit matching (Wang, Li, Feng & Zhang, CVPR 2022): the norm of the feature's
  residual off the principal subspace of the ID features (centred at ``o = -pinv(W) b``), scaled
  by ``alpha = mean max-logit / mean residual`` on the fit set; score = energy - alpha * residual.

Covariances are Ledoit-Wolf shrunk (scikit-learn): a validation set is often smaller than the
feature dimension, where the empirical covariance is singular. Reported per OOD and far-OOD split:
AUROC (ID test as positives) and FPR at 95 % TPR.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from safeadapt.config import check_settings, count, each, one_of, setting
from safeadapt.metrics.detection import auroc, energy_score, fpr_at_tpr, msp_score
from safeadapt.results import StudySummary
from safeadapt.safety.base import (
    EvalContext,
    Family,
    SafetyResult,
    Score,
    absent,
    register_family,
)

DETECTORS = ("msp", "max_logit", "energy", "knn", "mahalanobis", "relative_mahalanobis", "vim")


@dataclass(frozen=True)
class DetectionConfig:
    """Out-of-distribution detection: each detector scores ID test against every OOD split."""

    detectors: tuple[str, ...] = setting(
        DETECTORS, "the detectors scored", each(one_of(DETECTORS), limit=len(DETECTORS))
    )
    knn_k: int = setting(50, "knn: the neighbour whose distance is the score", count(1, 100_000))
    vim_dim: int | None = setting(
        None, "vim: principal dimensions kept; null: the paper's rule", count(1, 100_000)
    )

    def __post_init__(self) -> None:
        check_settings(self, "safety 'detection'")


# --- scorers: fit on ID features (and labels), return f(features, logits) -> (N,) scores ---


def knn_scorer(fit_x: Tensor, k: int):
    """``-||z - z_(k)||`` with ``z = x / ||x||``, ``z_(k)`` the k-th nearest fit feature."""
    from safeadapt.metrics.detection import knn_score

    bank = fit_x.double()
    k = max(1, min(k, len(bank) // 10 or 1))

    def score(x: Tensor, logits: Tensor) -> np.ndarray:
        return knn_score(bank, x, k)

    return score


def _precision(x: np.ndarray) -> np.ndarray:
    from sklearn.covariance import LedoitWolf

    return LedoitWolf(assume_centered=True).fit(x).precision_


def _ml_precision(x: np.ndarray) -> np.ndarray:
    """The pseudo-inverse of the maximum-likelihood covariance of centred rows ``x``."""
    return np.linalg.pinv(x.T @ x / len(x), hermitian=True)


def mahalanobis_scorer(fit_x: Tensor, fit_y: np.ndarray, relative: bool = False):
    """``-min_c (x - mu_c)^T S^-1 (x - mu_c)`` (tied covariance ``S``, Ledoit-Wolf shrunk);
    ``relative`` is Ren et al. (2021)'s relative distance: both ``S`` and the one Gaussian over
    all fit features ``S0`` by maximum likelihood (their definition; with shrinkage the two
    terms shrink differently and the difference fell below chance on text features), the
    class distance minus ``(x - mu_0)^T S0^-1 (x - mu_0)``."""
    x = fit_x.double().numpy()
    classes = np.unique(fit_y)
    means = np.stack([x[fit_y == c].mean(0) for c in classes])  # (C, D)
    centred = x - means[np.searchsorted(classes, fit_y)]
    prec = _ml_precision(centred) if relative else _precision(centred)
    mu0 = x.mean(0)
    prec0 = _ml_precision(x - mu0) if relative else None

    mp = means @ prec  # (C, D)
    mpm = (mp * means).sum(1)  # (C,)

    def score(feats: Tensor, logits: Tensor) -> np.ndarray:
        f = feats.double().numpy()
        # (x - mu)^T P (x - mu) = x^T P x - 2 mu^T P x + mu^T P mu, without an (N, C, D) array
        md = ((f @ prec) * f).sum(1)[:, None] - 2 * f @ mp.T + mpm[None]  # (N, C)
        if relative:
            g = f - mu0
            md = md - ((g @ prec0) * g).sum(1)[:, None]
        return -md.min(1)

    return score


def vim_scorer(fit_x: Tensor, fit_logits: Tensor, weight: Tensor, bias: Tensor, dim: int | None):
    """ViM. ``dim`` principal directions (paper: 1000 for D >= 2048, 512 for D >= 768, else D/2),
    capped below the rank the fit set supports."""
    w, b = weight.double(), bias.double()
    origin = -(torch.linalg.pinv(w) @ b)  # (D,)
    x = fit_x.double() - origin
    d = x.shape[1]
    if dim is None:
        dim = 1000 if d >= 2048 else 512 if d >= 768 else d // 2
    dim = max(1, min(dim, d - 1, len(x) - 1))
    # principal subspace of the centred features (the paper: eigenvectors of x^T x)
    _, _, vh = torch.linalg.svd(x, full_matrices=False)
    ortho = vh[dim:].T  # (D, D - dim) spans the residual space
    residual = (x @ ortho).norm(dim=1)
    alpha = fit_logits.double().max(1).values.mean() / residual.mean().clamp_min(1e-12)

    def score(feats: Tensor, logits: Tensor) -> np.ndarray:
        r = ((feats.double() - origin) @ ortho).norm(dim=1)
        energy = torch.logsumexp(logits.double(), dim=1)
        return (energy - alpha * r).numpy()

    return score


def _logit_scorer(kind: str):
    def score(feats: Tensor, logits: Tensor) -> np.ndarray:
        if kind == "msp":
            return msp_score(logits).numpy()
        if kind == "max_logit":
            return logits.double().max(1).values.numpy()
        return energy_score(logits).numpy()

    return score


def fit_scorer(
    det: str,
    fit_x: Tensor,
    fit_y: np.ndarray,
    fit_logits: Tensor,
    head: tuple[Tensor, Tensor],
    knn_k: int = 50,
    vim_dim: int | None = None,
):
    """Detector ``det`` (one of ``DETECTORS``) fitted on ID features, labels and logits (and the
    head's weight and bias, for ViM): a function ``(features, logits) -> (N,)`` scores."""
    if det in ("msp", "max_logit", "energy"):
        return _logit_scorer(det)
    if det == "knn":
        return knn_scorer(fit_x, knn_k)
    if det == "mahalanobis":
        return mahalanobis_scorer(fit_x, fit_y)
    if det == "relative_mahalanobis":
        return mahalanobis_scorer(fit_x, fit_y, relative=True)
    if det == "vim":
        return vim_scorer(fit_x, fit_logits, head[0], head[1], vim_dim)
    raise ValueError(f"unknown detector {det!r}; one of {', '.join(DETECTORS)}")


def build_scorers(ctx: EvalContext, cfg: DetectionConfig) -> dict[str, Any]:
    fit_x, fit_y, fit_logits = ctx.features("val"), ctx.labels("val"), ctx.logits("val")
    return {det: fit_scorer(det, fit_x, fit_y, fit_logits, ctx.head, cfg.knn_k, cfg.vim_dim)
            for det in cfg.detectors}  # fmt: skip


@dataclass(frozen=True)
class DetectorScore:
    auroc: float
    fpr95: float  # false-positive rate at 95 % true-positive rate


@dataclass(frozen=True)
class DetectionResult(SafetyResult):
    """Per OOD (and far-OOD) split, each detector's AUROC and FPR@95 against ID test; the
    detectors were fitted on ``fit_split``."""

    fit_split: str
    splits: dict[str, dict[str, DetectorScore]]
    detectors: list[str] | None = absent()

    def mean_auroc(self, detector: str, prefix: str) -> float | None:
        """The detector's AUROC averaged over the splits whose name starts with ``prefix``."""
        vals = [
            row[detector].auroc
            for k, row in self.splits.items()
            if k.startswith(prefix) and detector in row
        ]
        return float(np.mean(vals)) if vals else None


@register_family("detection", order=60)
class Detection(Family):
    title = "OOD detection: MSP, max-logit, energy, kNN, Mahalanobis, ViM (AUROC, FPR@95)"
    Config = DetectionConfig
    Result = DetectionResult
    # one column per feature-space detector (mean AUROC over OOD splits); never "the best
    # detector", which would be chosen on the OOD test splits
    SCORES = {
        "ood_auroc": ("OOD AUROC", True, ".3f"),
        "far_ood_auroc": ("far-OOD AUROC", True, ".3f"),
        "knn_auroc": ("kNN AUROC (OOD)", True, ".3f"),
        "rmd_auroc": ("rel. Mahalanobis AUROC (OOD)", True, ".3f"),
        "vim_auroc": ("ViM AUROC (OOD)", True, ".3f"),
    }
    # one column per detector (mean AUROC over the OOD, or far-OOD, splits); never "the best
    # detector", which would be chosen on the test splits. "OOD AUROC" is max-softmax's.
    _DETECTOR = {
        "ood_auroc": ("msp", "ood:"),
        "far_ood_auroc": ("msp", "far:"),
        "knn_auroc": ("knn", "ood:"),
        "rmd_auroc": ("relative_mahalanobis", "ood:"),
        "vim_auroc": ("vim", "ood:"),
    }

    def measure(self, ctx: EvalContext, config: DetectionConfig) -> DetectionResult:
        scorers = build_scorers(ctx, config)
        others = [*ctx.ood_names, *ctx.far_names]
        if not others:
            return DetectionResult("val", {})
        on_test = {k: f(ctx.features("test"), ctx.logits("test")) for k, f in scorers.items()}
        splits = {}
        for name in others:
            row = {}
            for det, f in scorers.items():
                s = f(ctx.features(name), ctx.logits(name))
                row[det] = DetectorScore(auroc(on_test[det], s), fpr_at_tpr(on_test[det], s))
            splits[name] = row
        return DetectionResult("val", splits, list(scorers))

    def scores(self, result: DetectionResult) -> dict[str, Score]:
        return self.declared(
            {key: result.mean_auroc(det, prefix) for key, (det, prefix) in self._DETECTOR.items()}
        )

    def intervals(self, results: list[DetectionResult], outputs: Any) -> dict[str, tuple]:
        """The MSP AUROC (``ood_auroc``), mean over OOD splits and seeds, from the stored
        probabilities: a two-sample bootstrap (ID and OOD examples resampled separately)."""
        from safeadapt.metrics.detection import rank_auroc
        from safeadapt.metrics.intervals import stratified_bootstrap

        ood = sorted({k for r in results for k in r.splits if k.startswith("ood:")})
        test = outputs.split("test") if outputs else None
        others = {k: outputs.split(k) for k in ood} if test is not None else {}
        others = {k: v for k, v in others.items() if v is not None}
        if test is None or not others:
            return {}
        seeds = range(test.probs.shape[0])

        def mean_auroc(d) -> float:
            msp_id = d["test"][0]
            return float(
                np.mean(
                    [rank_auroc(msp_id[s], d[k][0][s]) for k in d if k != "test" for s in seeds]
                )
            )

        parts = {"test": [test.probs.max(-1)], **{k: [v.probs.max(-1)] for k, v in others.items()}}
        lo, hi = stratified_bootstrap(mean_auroc, parts)
        return {"ood_auroc": (lo, hi, "bootstrap (ID and OOD resampled separately)")}

    def figure(
        self, results: dict[str, list[DetectionResult]], summary: StudySummary | None = None
    ) -> bytes | None:
        """Each detector's AUROC, ID test vs each OOD split (mean over splits and seeds): the
        dashed line is chance."""
        from safeadapt.safety.figures import bars, mean_over_seeds

        def get(r: DetectionResult) -> dict[str, float]:
            ood = [row for k, row in r.splits.items() if k.startswith("ood:")]
            if not ood:
                return {}
            return {d: float(np.mean([row[d].auroc for row in ood])) for d in r.detectors or []}

        data = mean_over_seeds(results, get)
        return bars(data, "AUROC (mean over OOD)", hline=0.5, ylim=(0.0, 1.05)) if data else None
