"""Distribution-shift checks from frozen embeddings: two-sample tests, pictures, advice."""

from safeadapt.results.shift import ShiftReport
from safeadapt.shift.report import probe_accuracy, shift_figure, shift_report
from safeadapt.shift.tests import classifier_test, ks_test, mmd_test

__all__ = [
    "classifier_test",
    "ks_test",
    "mmd_test",
    "ShiftReport",
    "probe_accuracy",
    "shift_figure",
    "shift_report",
]
