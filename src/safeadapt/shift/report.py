"""A distribution-shift check from frozen embeddings, before any training.

``shift_report(backbone, {"train": split_a, "test": split_b}, cache)`` embeds every set with the
frozen backbone (through the feature cache), runs the two-sample tests of
``safeadapt.shift.tests`` on the first set against each other one, measures whether a linear
probe already separates the task on the reference set, and gives the advice of the seed research
(Vargas et al. 2023): separable and no shift -> a linear probe may suffice; shift -> look at how
the data were collected before fine-tuning. A shift is declared when the MMD or the classifier
test rejects at half the level (Bonferroni). When another set has labels too, the probe fitted on
the reference set is scored on it against a probe cross-validated on that set itself (exact
McNemar test): a significant drop where the inputs do not differ means the labels disagree
between the sets (label noise, as with Sentiment140's emoticon labels), which no test on the
inputs can see. ``shift_figure`` draws the 2-D PCA picture with a kernel-density contour per set,
and a per-class view.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from safeadapt.data.features import FeatureCache
from safeadapt.data.task import Split
from safeadapt.errors import DataError
from safeadapt.results.shift import (
    Comparison,
    LabelAgreement,
    ProbeResult,
    ShiftReport,
)
from safeadapt.shift.tests import classifier_test, ks_test, mmd_test


@dataclass(frozen=True)
class EmbeddedShiftReport(ShiftReport):
    """A fresh shift report with the embeddings and labels it was computed on (set -> (n, d)
    tensor / labels): its figure can be drawn, and it renders with it in Jupyter. What is stored
    is ``without_data()``."""

    embeddings: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    labels: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def _repr_html_(self) -> str:
        return shift_html(self)


SEPARABLE_MARGIN = 0.15  # probe accuracy this far above the majority class counts as separable
LABEL_DROP = 0.05  # least accuracy drop (and significant) that is called a labelling mismatch
VERSION = 3  # bump when a decision rule changes: stored pre-flight results are then recomputed


def shift_detected(mmd_p: float, classifier_p: float, level: float) -> bool:
    """Shift if either test rejects at ``level / 2`` (Bonferroni over the two tests, so the
    chance of a false alarm on identical distributions stays at most ``level``)."""
    return min(mmd_p, classifier_p) < level / 2


def probe_accuracy(features: np.ndarray, labels: np.ndarray, seed: int = 0) -> ProbeResult:
    """5-fold cross-validated accuracy of a logistic-regression probe, and the majority rate."""
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    counts = np.bincount(labels)
    folds = _folds(labels)
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    acc = cross_val_score(_probe(), features, labels, cv=cv).mean()
    return ProbeResult(float(acc), float(counts.max() / counts.sum()), folds)


def _folds(labels: np.ndarray) -> int:
    """Up to 5 stratified folds, at most the size of the smallest class."""
    counts = np.bincount(labels)
    folds = int(min(5, counts[counts > 0].min()))
    if folds < 2:
        raise DataError("probe accuracy needs at least 2 examples of every class in the set.")
    return folds


def _probe():
    """The project's linear probe (``safeadapt.linear``) at C = 0.1 on standardised features."""
    from safeadapt.linear import LinearProbeClassifier

    return LinearProbeClassifier(C=0.1)


def label_agreement(
    reference: np.ndarray,
    ref_labels: np.ndarray,
    target: np.ndarray,
    target_labels: np.ndarray,
    seed: int = 0,
) -> LabelAgreement:
    """Do the two sets label alike? The probe fitted on ``reference`` is scored on ``target``
    (``transfer``) against a probe cross-validated on ``target`` itself (``own``, 5 folds).
    One-sided exact McNemar test on the examples where exactly one of them is right: ``p_value``
    is small when the transferred probe is wrong more often than chance allows."""
    from scipy.stats import binomtest
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    cv = StratifiedKFold(_folds(target_labels), shuffle=True, random_state=seed)
    own = cross_val_predict(_probe(), target, target_labels, cv=cv) == target_labels
    moved = _probe().fit(reference, ref_labels).predict(target) == target_labels
    only_own, only_moved = int(np.sum(own & ~moved)), int(np.sum(moved & ~own))
    p = binomtest(only_own, only_own + only_moved, 0.5, "greater").pvalue if only_own else 1.0
    return LabelAgreement(float(moved.mean()), float(own.mean()), only_own, only_moved, float(p))


def _labelled(labels: np.ndarray) -> bool:
    counts = np.bincount(labels)
    return int((counts >= 2).sum()) >= 2


def advice(shifted: bool, separable: bool | None, label_mismatch: list[str] | None = None) -> str:
    if label_mismatch:
        return (
            f"A probe fitted on the first set loses accuracy on {', '.join(label_mismatch)} that "
            "a probe fitted there does not: the labels disagree between the sets (label noise or "
            "a different labelling rule), and any model adapted on the first set learns its rule. "
            "Check or relabel the training labels before choosing a protocol."
        ) + (" The inputs differ as well." if shifted else "")
    if shifted:
        return (
            "The sets differ in embedding space: look at how each was collected (sources, "
            "filters, labelling) before fine-tuning; a model adapted to the first set may not "
            "transfer, and fine-tuning on it can make that worse."
        )
    if separable:
        return (
            "No shift detected and a linear probe already separates the task: linear probing "
            "may suffice (cheapest, and it keeps the backbone intact)."
        )
    return (
        "No shift detected, but a linear probe does not separate the task well: adapting the "
        "backbone (LP-FT, LDIFS) is worth its cost here."
    )


def shift_report(
    backbone,
    sets: Mapping[str, Split],
    cache: FeatureCache | None = None,
    *,
    level: float = 0.05,
    n_permutations: int = 500,
    max_per_set: int | None = 1000,
    seed: int = 0,
    show_progress: bool = False,
) -> EmbeddedShiftReport:
    """Compare the first of ``sets`` with every other one (see the module docstring)."""
    if len(sets) < 2:
        raise DataError(f"shift_report needs at least two sets; got {list(sets)}.")
    cache = cache or FeatureCache()
    sampled = {k: s.sample(max_per_set, seed) for k, s in sets.items()}
    emb = {
        k: cache.get(backbone, s, show_progress=show_progress).features for k, s in sampled.items()
    }
    names = list(sampled)
    ref = names[0]
    comparisons: dict[str, Comparison] = {}
    for other in names[1:]:
        mmd = mmd_test(emb[ref], emb[other], n_permutations, seed)
        c2st, first, second = classifier_test(emb[ref], emb[other], seed=seed)
        typical = {
            ref: [_show(sampled[ref].inputs[i]) for i in first],
            other: [_show(sampled[other].inputs[i]) for i in second],
        }
        shifted = shift_detected(mmd.p_value, c2st.p_value, level)
        ks = ks_test(emb[ref], emb[other], level)
        comparisons[other] = Comparison(mmd, c2st, ks, bool(shifted), c2st.auroc - 0.5, typical)
    probe = None
    labels = sampled[ref].labels
    mismatch: list[str] = []
    if len(np.unique(labels)) > 1:
        probe = probe_accuracy(emb[ref].numpy(), labels, seed)
        for other in names[1:]:
            y = sampled[other].labels
            if not _labelled(y) or y.max() > labels.max():
                continue  # unlabelled (far-OOD) or another label set
            agree = label_agreement(emb[ref].numpy(), labels, emb[other].numpy(), y, seed)
            compared = dataclasses.replace(comparisons[other], probe=agree)
            comparisons[other] = compared
            worse = agree.p_value < level and agree.transfer < agree.own - LABEL_DROP
            # under an input shift the drop mixes both causes: then it is not named label noise
            if worse and not compared.shift_detected:
                mismatch.append(other)
    separable = None if probe is None else probe.accuracy >= probe.majority + SEPARABLE_MARGIN
    any_shift = any(c.shift_detected for c in comparisons.values())
    return EmbeddedShiftReport(
        reference=ref,
        sizes={k: len(s) for k, s in sampled.items()},
        level=level,
        comparisons=comparisons,
        probe=probe,
        separable=separable,
        shift_detected=any_shift,
        label_mismatch=tuple(mismatch),
        advice=advice(any_shift, separable, mismatch),
        embeddings=emb,
        labels={k: s.labels for k, s in sampled.items()},
    )


def _show(x: Any) -> Any:
    return x if isinstance(x, str) else f"image {tuple(np.asarray(x).shape)}"


def shift_figure(report: ShiftReport, fmt: str = "png") -> bytes:
    """2-D PCA of the pooled embeddings: left, coloured by set with a KDE contour per set;
    right, coloured by class (marker per set)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    from scipy.stats import gaussian_kde
    from sklearn.decomposition import PCA

    if not isinstance(report, EmbeddedShiftReport) or not report.embeddings:
        raise DataError("this shift report has no embeddings to draw (a report read from JSON).")
    emb = report.embeddings
    names = list(emb)
    pooled = torch.cat([emb[k] for k in names]).numpy()
    pca = PCA(2, random_state=0).fit(pooled)
    pts = {k: pca.transform(emb[k].numpy()) for k in names}
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6))
    cmap = plt.get_cmap("tab10")
    flat = pca.transform(pooled)
    lo, hi = flat.min(0), flat.max(0)
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], 80), np.linspace(lo[1], hi[1], 80))
    for i, k in enumerate(names):
        axes[0].scatter(*pts[k].T, s=6, alpha=0.35, color=cmap(i), label=f"{k} ({len(pts[k])})")
        if len(pts[k]) > 3:
            dens = gaussian_kde(pts[k].T)(np.vstack([gx.ravel(), gy.ravel()])).reshape(gx.shape)
            axes[0].contour(gx, gy, dens, levels=4, colors=[cmap(i)], linewidths=1)
    axes[0].set_title("by set (KDE contours)")
    axes[0].legend(fontsize=8, markerscale=2)
    markers = "o^sDvP*X"
    labels = report.labels
    for i, k in enumerate(names):
        axes[1].scatter(
            *pts[k].T,
            s=8,
            alpha=0.4,
            c=[cmap(int(c) % 10) for c in labels[k]],
            marker=markers[i % len(markers)],
            label=k,
        )
    axes[1].set_title("by class (marker = set)")
    axes[1].legend(fontsize=8, markerscale=2)
    for ax in axes:
        ax.set_xlabel(f"PC1 ({pca.explained_variance_ratio_[0]:.0%})")
        ax.set_ylabel(f"PC2 ({pca.explained_variance_ratio_[1]:.0%})")
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def shift_html(report: ShiftReport) -> str:
    ref = html.escape(report.reference)
    rows = "".join(
        f"<tr><td>{ref} vs {html.escape(other)}</td>"
        f"<td>{c.mmd.mmd2:.4f} (p {c.mmd.p_value:.3g})</td>"
        f"<td>{c.classifier.auroc:.3f} (p {c.classifier.p_value:.3g})</td>"
        f"<td>{c.ks.significant_dimensions}/{c.ks.dimensions}</td>"
        f"<td><b>{'shift' if c.shift_detected else 'no shift'}</b></td></tr>"
        for other, c in report.comparisons.items()
    )
    picture = ""
    if isinstance(report, EmbeddedShiftReport) and report.embeddings:
        data = base64.b64encode(shift_figure(report)).decode()
        picture = f"<img style='max-width:100%' src='data:image/png;base64,{data}'>"
    return (
        "<table><thead><tr><th>sets</th><th>MMD²</th><th>domain classifier AUROC</th>"
        f"<th>KS dims</th><th></th></tr></thead><tbody>{rows}</tbody></table>"
        f"<p><b>Advice:</b> {html.escape(report.advice)}</p>{picture}"
    )
