"""The start-versus-fine-tuned decision and how a kept start is named."""

import numpy as np
import pytest

from safeadapt.protocols.start import keep_start_decision, kept_start_note


def _paired(only_start: int, only_tuned: int, both: int = 700, neither: int = 50):
    """Per-example correctness of a start and a fine-tuned model on the same val examples."""
    start = [True] * only_start + [False] * only_tuned + [True] * both + [False] * neither
    tuned = [False] * only_start + [True] * only_tuned + [True] * both + [False] * neither
    return np.array(start), np.array(tuned)


@pytest.mark.parametrize(
    ("only_start", "only_tuned", "kept"),
    [
        (5, 2, False),  # the MNIST case: the start ahead by 3 of 800 examples
        (0, 0, False),  # identical predictions: a tie goes to the fine-tuned model
        (10, 10, False),
        (2, 30, False),  # fine-tuning better
        (30, 2, True),  # fine-tuning clearly worse
    ],
)
def test_the_start_is_kept_only_when_fine_tuning_is_significantly_worse(
    only_start, only_tuned, kept
):
    decision = keep_start_decision(*_paired(only_start, only_tuned))
    assert decision.kept_start is kept
    assert decision.only_start_right == only_start
    assert decision.only_tuned_right == only_tuned
    assert type(decision).from_json(decision.to_json()) == decision  # as the record stores it


def _record(info):
    from safeadapt.results import RunRecord

    return RunRecord("lp-ft", 0, {}, {}, fit_seconds=1.0, eval_seconds=1.0, config={}, info=info)


def test_the_kept_start_is_said_where_the_model_is_described():
    lpft = _record({"best_epoch": 0, "lp_C": 1.0, "history": [{"epoch": 0}]})
    assert "the LP start was kept" in kept_start_note(lpft)
    assert kept_start_note(_record({"best_epoch": 2, "lp_C": 1.0})) is None
    assert kept_start_note(_record({})) is None
    tested = {"test": "McNemar exact", "alpha": 0.05, "start_accuracy": 0.9,
              "tuned_accuracy": 0.6, "only_start_right": 30, "only_tuned_right": 2,
              "p_value": 1.5e-7, "kept_start": True}  # fmt: skip
    note = kept_start_note(_record({"best_epoch": 0, "lp_C": 1.0, "start_test": tested}))
    assert "significantly worse" in note and "right on 30 examples" in note and "1.5e-07" in note
