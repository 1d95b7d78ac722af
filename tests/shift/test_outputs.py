"""shift's files and lines: sets chosen by name, a folder it may write, and a report in words."""

import pytest

from safeadapt.errors import DataError, InvalidConfig
from safeadapt.results.shift import (
    ClassifierResult,
    Comparison,
    KSResult,
    MMDResult,
    ProbeResult,
    ShiftReport,
)
from safeadapt.shift.outputs import SHIFT_MARKER, chosen_sets, claim_shift_folder, shift_lines


def test_sets_are_chosen_by_name_and_ood_means_every_ood_split():
    splits = {"train": 0, "test": 0, "ood:a": 0, "ood:b": 0}
    assert chosen_sets(splits, "train, ood") == ["train", "ood:a", "ood:b"]
    with pytest.raises(DataError, match="unknown set 'tset'; the task has train, test"):
        chosen_sets(splits, "train,tset")


def test_the_folder_is_new_empty_or_an_earlier_shifts(tmp_path):
    out = tmp_path / "shift"
    claim_shift_folder(out)
    assert (out / SHIFT_MARKER).is_file()
    claim_shift_folder(out)  # its own folder again
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(InvalidConfig, match="holds files safeadapt did not write"):
        claim_shift_folder(foreign)
    with pytest.raises(InvalidConfig, match="is a file"):
        claim_shift_folder(foreign / "notes.txt")
    assert (foreign / "notes.txt").read_text() == "keep me"


def test_the_report_in_lines_names_each_test_and_the_advice():
    comparison = Comparison(
        MMDResult(0.0123, 0.002, 1.0, 500, 0.0, 0.001, False),
        ClassifierResult(0.81, 0.001, 5, 0.7),
        KSResult(384, 12, 0.001, 0.3),
        True,
        0.31,
        {"train": ["a film"], "ood:tweets": ["lol"]},
    )
    report = ShiftReport("train", {"train": 10, "ood:tweets": 10}, 0.05,
                         {"ood:tweets": comparison}, ProbeResult(0.8, 0.5, 5), True, True, (),
                         "prefer LP-FT")  # fmt: skip
    lines = shift_lines(report)
    assert lines[0].startswith("train vs ood:tweets: MMD^2 0.0123 (p 0.002)")
    assert lines[0].endswith("KS 12/384 dims -> shift DETECTED")
    assert "  most typical of ood:tweets: lol" in lines
    assert lines[-2:] == ["linear probe on train: 0.800 (majority 0.500)", "advice: prefer LP-FT"]
