"""Two-sample tests: calibrated under no shift, powerful under a clear one, clear errors."""

import numpy as np
import pytest
import torch

from safeadapt.errors import DataError
from safeadapt.shift import classifier_test, ks_test, mmd_test


def _pair(seed: int, shift: float = 0.0, n: int = 60, d: int = 8):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    y = torch.randn(n, d, generator=g)
    y[:, 0] += shift
    return x, y


def test_mmd_false_positive_rate_is_near_the_level():
    rejections = [mmd_test(*_pair(s), n_permutations=200, seed=s).p_value < 0.05 for s in range(40)]
    assert np.mean(rejections) <= 0.15  # nominal 0.05; 40 repetitions


def test_mmd_detects_a_clear_shift_and_p_values_are_valid():
    out = mmd_test(*_pair(0, shift=1.5), n_permutations=200)
    assert out.p_value == pytest.approx(1 / 201)  # the smallest possible
    assert out.mmd2 > out.null_mean + 5 * out.null_std
    same = mmd_test(*_pair(1), n_permutations=200)
    assert 1 / 201 <= same.p_value <= 1


def test_mmd_matches_a_direct_unbiased_estimate():
    x, y = _pair(3, shift=0.5, n=20, d=3)
    out = mmd_test(x, y, n_permutations=10)
    z = torch.cat([x, y]).double()
    k = torch.exp(-torch.cdist(z, z).pow(2) / (2 * out.bandwidth**2))
    n = 20
    kxx, kyy, kxy = k[:n, :n], k[n:, n:], k[:n, n:]
    direct = (
        (kxx.sum() - kxx.trace()) / (n * (n - 1))
        + (kyy.sum() - kyy.trace()) / (n * (n - 1))
        - 2 * kxy.mean()
    )
    assert out.mmd2 == pytest.approx(direct.item(), rel=1e-9)


def test_classifier_test_and_ks():
    same = classifier_test(*_pair(2)).result
    shifted = classifier_test(*_pair(2, shift=2.0))
    assert abs(same.auroc - 0.5) < 0.15 and same.p_value > 0.01
    assert shifted.result.auroc > 0.8 and shifted.result.p_value < 1e-6
    assert len(shifted.typical_first) == 5
    ks = ks_test(*_pair(2, shift=2.0))
    assert ks.significant_dimensions >= 1 and ks.dimensions == 8
    assert ks_test(*_pair(4)).significant_dimensions == 0


@pytest.mark.parametrize(
    ("x", "y", "match"),
    [
        (torch.randn(5, 4), torch.randn(50, 4), "at least 10"),
        (torch.randn(20, 4), torch.randn(20, 5), "different feature dimensions"),
        (torch.full((20, 4), float("nan")), torch.randn(20, 4), "NaN"),
    ],
)
def test_bad_inputs(x, y, match):
    with pytest.raises(DataError, match=match):
        mmd_test(x, y)


def test_the_combined_decision_keeps_false_alarms_near_the_level():
    from safeadapt.shift.report import shift_detected

    alarms = []
    for s in range(40):
        x, y = _pair(100 + s)
        alarms.append(
            shift_detected(
                mmd_test(x, y, n_permutations=100, seed=s).p_value,
                classifier_test(x, y, seed=s).result.p_value,
                0.05,
            )
        )
    assert np.mean(alarms) <= 0.125  # nominal at most 0.05
    x, y = _pair(7, shift=1.5)
    assert shift_detected(mmd_test(x, y, 100).p_value, classifier_test(x, y).result.p_value, 0.05)


def test_mmd_in_blocks_equals_one_block_and_big_sides_are_subsampled():
    """The kernel is computed a block of rows at a time: any block size gives the same statistic,
    null and p-value; sides above ``max_per_side`` are subsampled, and the result says so."""
    x, y = _pair(4, shift=0.3, n=70, d=5)
    whole = mmd_test(x, y, n_permutations=50, block_rows=10_000)
    assert whole.subsampled is None
    for rows in (1, 7, 64):
        part = mmd_test(x, y, n_permutations=50, block_rows=rows)
        assert part.mmd2 == pytest.approx(whole.mmd2, rel=1e-10, abs=1e-15)
        assert part.null_mean == pytest.approx(whole.null_mean, rel=1e-9, abs=1e-15)
        assert part.p_value == whole.p_value
    small = mmd_test(x, y[:50], n_permutations=20, max_per_side=30)
    assert small.subsampled == {"x": [30, 70], "y": [30, 50]}
