"""The coloured-images task of the overwriting-bias experiment: colours, curation targets, a
balanced test set, fixed pools across levels, and settings errors."""

import numpy as np
import pytest

from safeadapt.bias import phi
from safeadapt.data import load_builtin_task
from safeadapt.data.builtin.coloured import colourise
from safeadapt.errors import InvalidConfig

SMALL = {"source": "mnist", "size": 120, "test_per_cell": 40}


def test_colourise_tints_a_copy():
    grey = np.full((2, 4, 4), 200, dtype=np.uint8)
    rgb = colourise(grey, ["red", "green"])
    assert rgb.shape == (2, 4, 4, 3) and rgb.dtype == np.uint8
    assert tuple(rgb[0, 0, 0]) == (200, 20, 20) and tuple(rgb[1, 0, 0]) == (20, 200, 20)
    assert np.all(grey == 200)
    with pytest.raises(InvalidConfig, match="one colour each"):
        colourise(grey, ["red"])


@pytest.mark.parametrize("rho", [1.0, 0.5, 0.0])
def test_correlation_levels_hit_their_target_on_a_balanced_test(rho):
    task = load_builtin_task("coloured", correlation=rho, **SMALL)
    assert len(task.train) == 120 and len(task.val) == 30
    assert abs(phi(task.train.labels, task.train.groups, "red") - rho) < 0.05
    assert abs(phi(task.val.labels, task.val.groups, "red") - rho) < 0.1
    test = task.test
    assert len(test) == 4 * 40 and abs(phi(test.labels, test.groups, "red")) < 1e-9
    red = test.inputs[np.asarray(test.groups) == "red"]
    assert test.inputs.shape[-1] == 3 and red[..., 0].mean() > 3 * red[..., 1].mean()


def test_minority_share_and_fixed_test_across_levels():
    a = load_builtin_task("coloured", minority_share=0.25, **SMALL)
    b = load_builtin_task("coloured", correlation=1.0, **SMALL)
    assert np.mean(np.asarray(a.train.groups) == "green") == pytest.approx(0.25, abs=0.01)
    assert a.test.fingerprint() == b.test.fingerprint()  # every level is judged on one test set
    bias = load_builtin_task("coloured", pool="bias", correlation=1.0, **SMALL)
    assert not set(map(bytes, bias.train.inputs)) & set(map(bytes, b.train.inputs))


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"correlation": 0.5, "minority_share": 0.1}, "not both"),
        ({"source": "cifar"}, "'source' must be one of"),
        ({"pool": "test"}, "'pool' must be one of"),
        ({"minority_share": 1.5}, "'minority_share' must be in"),
        ({"test_per_cell": 10_000}, "lower 'test_per_cell'"),
    ],
)
def test_bad_settings_are_named(options, match):
    with pytest.raises(InvalidConfig, match=match):
        load_builtin_task("coloured", **{**SMALL, **options})


def test_ood_splits_come_from_the_other_pool_at_their_correlation():
    task = load_builtin_task("coloured", correlation=0.9, ood=["decorrelated", "reversed"], **SMALL)
    assert set(task.ood) == {"decorrelated", "reversed"}
    dec, rev = task.ood["decorrelated"], task.ood["reversed"]
    assert len(dec) == len(rev) == 4 * 40
    assert abs(phi(dec.labels, dec.groups, "red")) < 0.2
    assert phi(rev.labels, rev.groups, "red") < -0.75  # the training correlation reversed
    seen = {bytes(x) for s in (task.train, task.val, task.test) for x in np.asarray(s.inputs)}
    grey = [{bytes(x.max(-1)) for x in s.inputs} for s in (dec, rev)]  # each image once
    assert not grey[0] & grey[1]
    assert not {bytes(x) for s in (dec, rev) for x in s.inputs} & seen
    assert load_builtin_task("coloured", **SMALL).ood == {}  # none unless asked
    with pytest.raises(InvalidConfig, match="'reversed' OOD split negates"):
        load_builtin_task("coloured", ood=["reversed"], **SMALL)
