"""Weight-space arithmetic: exact end points, midpoints, key checks, soups."""

import pytest
import torch

from safeadapt.errors import InvalidConfig
from safeadapt.merge import greedy_soup, interpolate, uniform_soup


def _sd(value: float) -> dict:
    return {
        "w": torch.full((2, 3), value),
        "b": torch.full((3,), -value),
        "bn.num_batches_tracked": torch.tensor(int(value * 10)),
    }


def test_interpolation_end_points_are_exact_and_midpoint_is_the_mean():
    a, b = _sd(1.0), _sd(3.0)
    for k, v in interpolate(a, b, 0.0).items():
        assert torch.equal(v, a[k]) or k == "bn.num_batches_tracked"
    for k, v in interpolate(a, b, 1.0).items():
        assert torch.equal(v, b[k])
    mid = interpolate(a, b, 0.5)
    assert torch.allclose(mid["w"], torch.full((2, 3), 2.0))
    assert mid["bn.num_batches_tracked"].item() == 30  # integer buffers are not averaged


def test_mismatched_state_dicts_are_named():
    a, b = _sd(1.0), _sd(2.0)
    b.pop("b")
    with pytest.raises(InvalidConfig, match="different keys"):
        interpolate(a, b, 0.5)
    c = _sd(2.0)
    c["w"] = torch.zeros(3, 2)
    with pytest.raises(InvalidConfig, match="'w' has shape"):
        uniform_soup([a, c])
    with pytest.raises(InvalidConfig, match=r"in \[0, 1\]"):
        interpolate(a, _sd(2.0), 1.5)


def test_uniform_soup_of_identical_models_is_the_model():
    a = _sd(1.5)
    soup = uniform_soup([a, _sd(1.5), _sd(1.5)])
    for k in a:
        assert torch.equal(soup[k], a[k])


def test_greedy_soup_keeps_only_members_that_do_not_hurt():
    members = [_sd(1.0), _sd(5.0), _sd(1.2), _sd(100.0)]

    def score(sd):  # best when w is near 1.1
        return -abs(sd["w"].mean().item() - 1.1)

    soup, kept, trace = greedy_soup(members, score)
    assert kept[0] == 2 and 0 in kept and 3 not in kept and 1 not in kept  # order by own score
    assert trace == sorted(trace)  # the held-out score never drops
    assert soup["w"].mean().item() == pytest.approx(1.1)
