"""One window of production inputs measured against the export's reference: typed results and
the alert policy.

The alert policy is Bonferroni over a declared horizon: with ``alpha`` the family-wise false
alarm rate a user accepts over ``horizon`` windows, each of the window's tests runs at
``alpha / (horizon x tests)``. Past the horizon, each further block of ``horizon`` windows has
the same guarantee. Why Bonferroni and not a calibrated expected run time (alibi-detect): it
holds under any dependence -- the windows share one reference sample, and a window's tests share
its inputs -- and needs no simulation of the null stream at export time; the price is that it
is conservative, which shows as a longer detection delay (``bench/bench_monitor.py`` measures
it) rather than as false alarms.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from torch import Tensor

from safeadapt.metrics.detection import knn_score
from safeadapt.monitor import signals
from safeadapt.monitor.reference import Reference

# the tests a window runs that can raise an alert (the embedding test of the adapted backbone
# only when the adaptation changed the backbone; the kNN rate when the reference has its bank)
TESTS = ("embedding_pretrained", "embedding_adapted", "prediction", "ood_rate", "ood_rate_knn")
COVERAGE = 0.9  # the conformal sets' target coverage (split conformal, LAC, on the reference)


@dataclass(frozen=True)
class AlertPolicy:
    alpha: float = 0.05
    horizon: int = 50

    def level(self, tests: int) -> float:
        """The level each of a window's ``tests`` runs at."""
        return self.alpha / (self.horizon * tests)

    def describe(self) -> str:
        return (f"Bonferroni: false alarms at most {self.alpha:g} over each {self.horizon} "
                "windows, under any dependence between windows and tests")  # fmt: skip


@dataclass(frozen=True)
class Test:
    """One test of a window: its statistic, p-value, and whether it raised an alert."""

    statistic: float
    p_value: float
    alert: bool
    # the window's rows the test compared (the kernel tests subsample; None: every row)
    rows: int | None = None


@dataclass(frozen=True)
class Rate:
    """The OOD detector's flag rate: the share, its Wilson interval, the reference rate."""

    rate: float
    ci_low: float
    ci_high: float
    reference_rate: float


@dataclass(frozen=True)
class Accuracy:
    accuracy: float
    ci_low: float
    ci_high: float
    labelled: int


@dataclass(frozen=True)
class WindowResult:
    index: int
    key: str  # content key of the window's rows
    rows: int
    start: str | None  # the time column's first and last value, when windows follow it
    end: str | None
    level: float
    tests: dict[str, Test]
    ood: Rate
    atc: float  # estimated accuracy without labels
    doc: float
    accuracy: Accuracy | None  # when labels came back for some rows
    class_share: tuple[float, ...]
    # conformal sets at COVERAGE, calibrated on the reference: their mean size needs no label;
    # their coverage of the labelled rows (Wilson interval) says whether the guarantee holds
    set_size: float | None = None
    coverage: Accuracy | None = None
    # black-box shift estimation: the window's label shares and the accuracy they imply
    label_share: tuple[float, ...] | None = None
    bbse: float | None = None
    bbse_ci: tuple[float, float] | None = None  # bootstrap (windows measured before: None)
    # the kNN detector's flag rate in the adapted feature space (exports made before it: None)
    ood_knn: Rate | None = None
    # 95 % intervals for the window's accuracy around each estimate, where the estimator's
    # assumption holds (signals.estimate_interval); windows measured before them: None
    atc_ci: tuple[float, float] | None = None
    doc_ci: tuple[float, float] | None = None
    # the flag rates of the detectors asked for beyond the two above (--more-detectors)
    ood_more: dict[str, Rate] = field(default_factory=dict)
    # wall time of the window's measurement (its model passes and tests), seconds
    seconds: float | None = None

    @property
    def alerts(self) -> tuple[str, ...]:
        return tuple(name for name, t in self.tests.items() if t.alert)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Any, where: str = "a monitor window") -> WindowResult:
        """A window's result read strictly (``safeadapt.readback``): exit 2 naming the key."""
        from safeadapt.readback import typed

        return typed(
            cls, data, where, "move the window file away, or give a new --out", nonfinite=True
        )

    def row(self) -> dict[str, Any]:
        """One flat row of ``monitor.csv``."""
        out: dict[str, Any] = {"window": self.index, "rows": self.rows, "start": self.start,
                               "end": self.end, "level": self.level}  # fmt: skip
        for name, t in self.tests.items():
            out[f"{name}_stat"], out[f"{name}_p"] = t.statistic, t.p_value
            out[f"{name}_alert"] = t.alert
            if t.rows is not None:
                out[f"{name}_rows"] = t.rows
        knn = self.ood_knn
        for name, more in self.ood_more.items():
            out[f"ood_rate_{name}"] = more.rate
        out.update({"ood_rate": self.ood.rate, "ood_rate_low": self.ood.ci_low,
                    "ood_rate_high": self.ood.ci_high,
                    "ood_rate_knn": knn.rate if knn else None,
                    "ood_rate_knn_low": knn.ci_low if knn else None,
                    "ood_rate_knn_high": knn.ci_high if knn else None,
                    "atc": self.atc,
                    "atc_low": self.atc_ci[0] if self.atc_ci else None,
                    "atc_high": self.atc_ci[1] if self.atc_ci else None,
                    "doc": self.doc,
                    "doc_low": self.doc_ci[0] if self.doc_ci else None,
                    "doc_high": self.doc_ci[1] if self.doc_ci else None})  # fmt: skip
        acc = self.accuracy
        out.update({"accuracy": acc.accuracy if acc else None,
                    "accuracy_low": acc.ci_low if acc else None,
                    "accuracy_high": acc.ci_high if acc else None,
                    "labelled": acc.labelled if acc else 0,
                    "atc_error": self.atc - acc.accuracy if acc else None,
                    "bbse": self.bbse,
                    "bbse_low": self.bbse_ci[0] if self.bbse_ci else None,
                    "bbse_high": self.bbse_ci[1] if self.bbse_ci else None,
                    "set_size": self.set_size,
                    "coverage": self.coverage.accuracy if self.coverage else None,
                    "coverage_low": self.coverage.ci_low if self.coverage else None,
                    "coverage_high": self.coverage.ci_high if self.coverage else None,
                    "seconds": self.seconds,
                    "alerts": " ".join(self.alerts)})  # fmt: skip
        return out


def ci_text(interval: tuple[float, float] | None) -> str:
    """`` [low, high]`` to follow an estimate in text, or nothing for a window without one."""
    return f" [{interval[0]:.3f}, {interval[1]:.3f}]" if interval else ""


def measure_window(
    reference: Reference,
    pretrained: Tensor,
    adapted: Tensor,
    logits: Tensor,
    labels: np.ndarray,
    policy: AlertPolicy,
    *,
    index: int,
    key: str,
    span: tuple[str | None, str | None] = (None, None),
    more: tuple = (),
) -> WindowResult:
    """Every signal of one window (features and logits already computed) against ``reference``;
    ``labels`` holds -1 for the rows whose label has not come back; ``more``: detectors fitted
    on the reference beyond its own two (``monitor.detectors.FittedDetector``), one OOD-rate
    test each."""
    skip = {"embedding_adapted"} if reference.same_backbone else set()
    if reference.knn_threshold is None:
        skip.add("ood_rate_knn")
    names = [t for t in TESTS if t not in skip] + [f"ood_rate_{d.name}" for d in more]
    level = policy.level(len(names))
    seed = reference.seed + index
    tests: dict[str, Test] = {}
    for name, ref, win in (("embedding_pretrained", reference.pretrained, pretrained),
                           ("embedding_adapted", reference.adapted, adapted)):  # fmt: skip
        if name in names:
            r = signals.embedding_drift(ref, win, level, seed)
            tests[name] = Test(r.statistic, r.p_value, r.p_value <= level,
                               min(len(win), signals.MMD_PER_SIDE))  # fmt: skip
    pred = logits.argmax(1).numpy()
    drift, share = signals.prediction_drift(reference.predictions, pred,
                                            len(reference.label_names))  # fmt: skip
    tests["prediction"] = Test(drift.statistic, drift.p_value, drift.p_value <= level)
    rate = signals.ood_rate(signals.energy(logits), reference.ood_threshold,
                            reference.ood_reference_flagged, reference.ood_reference_n)  # fmt: skip
    tests["ood_rate"] = Test(rate.rate, rate.p_value, rate.p_value <= level)
    knn = None
    if "ood_rate_knn" in names:
        scores = knn_score(reference.knn_bank(), adapted, reference.knn_k)
        knn = signals.ood_rate(scores, reference.knn_threshold, reference.knn_reference_flagged,
                               reference.ood_reference_n)  # fmt: skip
        tests["ood_rate_knn"] = Test(knn.rate, knn.p_value, knn.p_value <= level)
    rates = {}
    for d in more:
        r = signals.ood_rate(d.score(adapted, logits), d.threshold, d.reference_flagged,
                             d.reference_n)  # fmt: skip
        tests[f"ood_rate_{d.name}"] = Test(r.rate, r.p_value, r.p_value <= level)
        rates[d.name] = Rate(r.rate, r.ci_low, r.ci_high, r.reference_rate)
    atc = signals.atc_estimate(signals.negative_entropy(logits, reference.temperature),
                               reference.atc_threshold)  # fmt: skip
    doc = signals.doc_estimate(signals.confidence(logits, reference.temperature),
                               reference.confidence_mean, reference.accuracy)  # fmt: skip
    atc_slips, doc_slips = reference.slips()
    atc_ci = signals.estimate_interval(atc, atc_slips, len(pred))
    doc_ci = signals.estimate_interval(doc, doc_slips, len(pred))
    acc = signals.accuracy(pred, labels)
    size, cover = signals.conformal(reference.logits, reference.labels, logits, labels, COVERAGE)
    label_share, bbse = signals.label_shift(reference.predictions, reference.labels,
                                            np.asarray(share), len(reference.label_names))  # fmt: skip
    return WindowResult(
        index=index, key=key, rows=len(pred), start=span[0], end=span[1], level=level,
        tests=tests, ood=Rate(rate.rate, rate.ci_low, rate.ci_high, rate.reference_rate),
        atc=atc, doc=doc, accuracy=Accuracy(*acc) if acc else None, class_share=share,
        set_size=size, coverage=Accuracy(*cover) if cover else None,
        label_share=label_share, bbse=bbse,
        bbse_ci=signals.label_shift_interval(reference.predictions, reference.labels, pred,
                                             len(reference.label_names), bbse, seed),
        ood_knn=Rate(knn.rate, knn.ci_low, knn.ci_high, knn.reference_rate) if knn else None,
        atc_ci=atc_ci, doc_ci=doc_ci, ood_more=rates,
    )  # fmt: skip
