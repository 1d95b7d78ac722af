"""shift's files and lines: sets chosen by name, a folder it may write, and a report in words."""

import pytest

from safeadapt.errors import DataError, InvalidConfig
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
    comparison = {
        "mmd": {"mmd2": 0.0123, "p_value": 0.002},
        "classifier": {"auroc": 0.81, "p_value": 0.001},
        "ks": {"significant_dimensions": 12, "dimensions": 384},
        "shift_detected": True,
        "typical": {"train": ["a film"], "ood:tweets": ["lol"]},
    }
    report = {
        "reference": "train",
        "comparisons": {"ood:tweets": comparison},
        "probe": {"accuracy": 0.8, "majority": 0.5},
        "advice": "prefer LP-FT",
    }
    lines = shift_lines(report)
    assert lines[0].startswith("train vs ood:tweets: MMD^2 0.0123 (p 0.002)")
    assert lines[0].endswith("KS 12/384 dims -> shift DETECTED")
    assert "  most typical of ood:tweets: lol" in lines
    assert lines[-2:] == ["linear probe on train: 0.800 (majority 0.500)", "advice: prefer LP-FT"]
