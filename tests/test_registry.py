import pytest

from safeadapt._registry import Registry
from safeadapt.config import build_config
from safeadapt.errors import InvalidConfig
from safeadapt.protocols import PROTOCOLS, make_protocol
from safeadapt.protocols.lp import LPConfig


def test_unknown_name_suggests_the_closest():
    with pytest.raises(InvalidConfig, match=r"Unknown protocol 'lp-fft'\. Did you mean 'lp-ft'\?"):
        PROTOCOLS.get("lp-fft")


def test_double_registration_is_refused():
    reg: Registry[int] = Registry("thing")
    reg.register("a")(1)
    with pytest.raises(ValueError, match="registered twice"):
        reg.register("a")(2)
    assert reg.names() == ["a"] and "a" in reg


def test_declared_order_not_import_order_sets_the_sequence():
    reg: Registry[int] = Registry("thing")
    reg.register("late", order=20)(1)
    reg.register("plugin")(2)  # no order: after every ordered entry
    reg.register("early", order=10)(3)
    assert reg.in_order() == ["early", "late", "plugin"]
    assert repr(reg) == "<Registry 'thing' (3): early, late, plugin>"


def test_the_safety_families_are_found_and_ordered_by_declaration():
    from safeadapt.safety import FAMILIES

    order = FAMILIES.in_order()
    assert order[:3] == ["effective_robustness", "calibration", "adversarial"]
    assert order[-1] == "flips" and len(order) == len(set(order)) == 11


def test_config_typo_names_the_key_and_the_fix():
    with pytest.raises(InvalidConfig, match=r"unknown setting 'c_gird'\. Did you mean 'c_grid'\?"):
        build_config(LPConfig, {"c_gird": [1.0]}, "protocol 'lp'")


@pytest.mark.parametrize(
    ("name", "params", "match"),
    [
        ("ft", {"lr": -1e-5}, "'lr' must be a positive finite number"),
        ("ft", {"epochs": 0}, "'epochs' must be an integer >= 1"),
        ("ft", {"warmup_ratio": 1.5}, "'optimizer.warmup_ratio' must be in"),
        ("lp", {"c_grid": []}, "'c_grid' must be a list of at least 1 entry"),
        ("lp-ft", {"lp": {"c_grid": [0]}}, "'c_grid' entry 0 must be a positive"),
        ("lp-ft", {"mixed_precision": "fp8"}, "'mixed_precision'"),
    ],
)
def test_bad_protocol_parameters_are_rejected(name, params, match):
    with pytest.raises(InvalidConfig, match=match):
        make_protocol(name, params)


def test_lists_become_tuples_and_overrides_apply():
    proto = make_protocol("lp-ft", {"lp": {"c_grid": [0.5, 2.0]}}, lr=3e-6)
    assert proto.config.lp.c_grid == (0.5, 2.0)
    assert proto.config.lr == 3e-6
