"""When fine-tuning returns its start (epoch 0) instead of its best fine-tuned epoch, and what a
run that did so is called wherever it is described (console, report, model card).

The start's validation accuracy is optimistic when the start was itself chosen on that validation
set (LP-FT's LP head: its C was picked there), so it is kept only when the fine-tuned model is
significantly worse on the same validation examples (:func:`keep_start_decision`).
"""

from __future__ import annotations

import numpy as np

from safeadapt.metrics.intervals import mcnemar_exact
from safeadapt.results import RunRecord
from safeadapt.results.fit_info import StartTest

# The level of the start-versus-fine-tuned test: the verdicts' level (safeadapt.study.recommend).
START_ALPHA = 0.05
# In the run key, so records made under another rule are redone.
START_RULE = f"mcnemar-exact-{START_ALPHA}"


def keep_start_decision(
    start_correct: np.ndarray, tuned_correct: np.ndarray, alpha: float = START_ALPHA
) -> StartTest:
    """Should fine-tuning return its start (epoch 0) rather than its best fine-tuned epoch?

    The start's validation accuracy is optimistic when the start was itself chosen on that
    validation set (LP-FT's LP head: its C was picked there), so a start ahead by a few examples
    is no evidence that fine-tuning hurt. The start is kept only when the fine-tuned model is
    *significantly* worse on the same validation examples: McNemar's exact test (two-sided, at
    ``alpha``) on the examples exactly one of them gets right, with the start right on more of
    them. Ties and differences within chance go to the fine-tuned model, the protocol asked for.
    """
    test = mcnemar_exact(start_correct, tuned_correct)
    return StartTest(
        test="McNemar exact",
        alpha=alpha,
        start_accuracy=float(np.mean(start_correct)),
        tuned_accuracy=float(np.mean(tuned_correct)),
        only_start_right=test.only_a,
        only_tuned_right=test.only_b,
        p_value=test.p_value,
        kept_start=bool(test.only_a > test.only_b and test.p_value < alpha),
    )


def kept_start_note(record: RunRecord) -> str | None:
    """What a run whose early stopping kept its start (epoch 0) really is, or None."""
    fit = record.fit
    if fit.best_epoch != 0:
        return None
    start = fit.start_name
    test = fit.start_test
    if test:
        why = (
            f"fine-tuning was significantly worse on validation than its start (the start alone "
            f"right on {test.only_start_right} examples, the fine-tuned model alone on "
            f"{test.only_tuned_right}; McNemar p = {test.p_value:.2g})"
        )
    else:  # records made before the start had to win a paired test
        why = "fine-tuning did not improve validation accuracy"
    return f"{why}; the {start} start was kept (this is the {start} model, not a fine-tuned one)"
