"""Agreement-on-the-line (Baek et al., NeurIPS 2022; ALine-D): the deployed model's accuracy on
a window from how its ensemble (``monitor.members``: heads on the deployed model's own features)
agrees with it and among itself, no label needed -- the estimate that can see a model that is
confidently wrong, where ATC, DoC and BBSE read its confidence (``stats.aline_d``).

The line is fitted per window over the pairs: probit of their agreement on the window against
probit of their agreement on the reference. Its fit is reported beside the estimate: R^2 and
the chi-square p-value of the pairs' residuals against the sampling noise of their agreements
(``stats.aline_d``); below ``MIN_FIT_P`` the summary says the pairs stray from the line, and
the estimate's assumption is in doubt. On MiniLM LP windows of 300 tweets that p-value was
below 1e-3 while the estimate was within 0.03 of the truth, so it warns rather than withholds;
only where the reference gives no line at all (every pair agreeing alike) is no estimate given.
The export's track record on the study's labelled shifted splits (``EstimateCheck.aline``) is
in the summary, as ATC's and DoC's. Mehra et al. 2024: an ensemble may lack the diversity the
line needs -- the track record and the fit are how that shows.

The 95 % interval: a percentile bootstrap of the reference's and the window's rows (``DRAWS``,
seeded), each draw's accuracy then drawn as the window's own share of right answers (binomial
on its rows), as BBSE's; widened to hold the estimate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from safeadapt.monitor.signals import stats
from safeadapt.monitor.signals.base import (
    Estimate,
    Signal,
    Window,
    estimate_columns,
    register_signal,
)

MIN_FIT_P = 0.01
DRAWS = 200


@dataclass(frozen=True)
class AgreementResult:
    estimate: float | None  # None where the line does not hold
    ci: tuple[float, float] | None
    r2: float  # of the agreement line over the pairs; NaN: no spread to fit it on
    fit_p: float  # the pairs' residuals from the line against their sampling noise
    slope: float
    agreement: float  # the members' mean agreement with the deployed model on the window
    members: int


@register_signal("aline", order=95, alerts=False)
class Agreement(Signal):
    label = "ALine-D"
    Result = AgreementResult

    @classmethod
    def applies(cls, reference) -> bool:
        return reference.members >= 2

    def settings(self) -> dict[str, Any]:
        return {"min_fit_p": MIN_FIT_P, "draws": DRAWS}

    def fit(self, reference, head) -> None:
        self._reference = reference
        self._ref_preds = reference.ensemble_predictions(reference.adapted, reference.logits)
        self._labels = np.asarray(reference.labels)

    def measure(self, window: Window) -> AgreementResult:
        preds = self._reference.ensemble_predictions(window.adapted, window.logits)
        line = stats.aline_estimate(self._ref_preds, self._labels, preds)
        agreement = float((preds[1:] == preds[0]).mean())
        holds = bool(np.isfinite(line.r2))  # a line to read (see the module docstring)
        estimate = float(line.accuracy[0]) if holds else None
        ci = self._interval(preds, estimate, window.seed) if holds else None
        return AgreementResult(estimate, ci, float(line.r2), line.fit_p, line.slope, agreement,
                               len(preds) - 1)  # fmt: skip

    def _interval(self, preds: np.ndarray, estimate: float, seed: int) -> tuple[float, float]:
        n_ref, n = self._ref_preds.shape[1], preds.shape[1]

        def draw(rng: np.random.Generator) -> float:
            r, w = rng.integers(0, n_ref, n_ref), rng.integers(0, n, n)
            line = stats.aline_estimate(self._ref_preds[:, r], self._labels[r], preds[:, w])
            return float(line.accuracy[0])

        return stats.window_accuracy_interval(draw, n, estimate, seed, DRAWS)

    def estimate(self, result: AgreementResult | None) -> Estimate | None:
        if result is None or result.estimate is None:
            return None
        return Estimate(result.estimate, result.ci)

    def columns(self, result: AgreementResult | None, window) -> dict[str, Any]:
        return {**estimate_columns("aline", self.estimate(result)),
                "aline_r2": result.r2 if result else None,
                "aline_fit_p": result.fit_p if result else None,
                "aline_agreement": result.agreement if result else None}  # fmt: skip

    def text(self, result: AgreementResult | None) -> str | None:
        if result is None:
            return None
        est = self.estimate(result)
        if est is None:
            return f"{self.label}: no agreement line on the reference (every pair agrees alike)"
        ci = f" [{est.ci[0]:.3f}, {est.ci[1]:.3f}]" if est.ci else ""
        doubt = (f", pairs off the line beyond sampling noise (fit p {result.fit_p:.2g})"
                 if result.fit_p < MIN_FIT_P else "")  # fmt: skip
        return f"{self.label} {est.estimate:.3f}{ci}{doubt}"
