"""What a study can name and every setting of it (`safeadapt list <name>`, `init --full`), read
from the configs that validation uses, so the two cannot disagree (issue 25, item 1)."""

import dataclasses
import json

import pytest
import yaml
from typer.testing import CliRunner

from safeadapt.catalog import describe, registries
from safeadapt.cli import app
from safeadapt.errors import InvalidConfig

runner = CliRunner()


def test_every_protocol_and_family_lists_exactly_its_config_fields():
    from safeadapt.protocols import PROTOCOLS
    from safeadapt.safety import FAMILIES

    for name in PROTOCOLS.names():  # nested settings follow their field as field.setting
        fields = [f.name for f in dataclasses.fields(PROTOCOLS.get(name).Config)]
        tops = [s.name.split(".")[0] for s in describe(name).settings]
        assert list(dict.fromkeys(tops)) == fields, name
    for name in FAMILIES.names():
        fields = [f.name for f in dataclasses.fields(FAMILIES.get(name).Config)]
        assert [s.name for s in describe(name).settings] == fields, name
    assert {"hf:", "module:"} <= set(registries()["backbone sources"][0])


def test_the_range_shown_is_the_range_enforced(tmp_path):
    out = runner.invoke(app, ["list", "ft", "--json"])
    assert out.exit_code == 0, out.output
    settings = {s["name"]: s for s in json.loads(out.output)["settings"]}
    assert settings["epochs"]["allowed"] == "an integer >= 1, at most 10,000"
    assert settings["tune"]["allowed"].startswith("one of all, bitfit, last-k, lora; a name")
    assert settings["tune.lora.r"]["allowed"] == "an integer >= 1, at most 4,096"
    assert settings["optimizer.head_lr"]["default"] == 1e-3  # FT's own default, shown
    ldifs = {s.name: s for s in describe("ldifs").settings}
    assert (
        ldifs["regularizer"].default == "ldifs" and ldifs["regularizer.ldifs.weight"].default == 10
    )
    assert settings["lr"]["default"] == 2e-5 and settings["lr"]["type"] == "float"
    assert all(s["doc"] for s in settings.values())  # every training setting says what it does
    from safeadapt.protocols import make_protocol

    with pytest.raises(InvalidConfig, match="above the limit of 10000"):
        make_protocol("ft", epochs=10_001)
    make_protocol("ft", epochs=10_000)  # the bound shown is allowed
    with pytest.raises(InvalidConfig, match="'tune' must be one of all, bitfit, last-k, lora"):
        make_protocol("ft", tune="prefix")
    # a subclass that only changes a default keeps its base's rule (FT's own lr default)
    with pytest.raises(InvalidConfig, match="'lr' must be a positive finite number"):
        make_protocol("ft", lr=0.0)


def test_list_names_a_near_miss_and_exits_2():
    out = runner.invoke(app, ["list", "ldfis"])
    assert out.exit_code == 2 and "Did you mean 'ldifs'" in out.output
    with pytest.raises(InvalidConfig, match="nothing named"):
        describe("nothing-like-it")


def test_list_shows_backbone_sources_and_their_options():
    out = runner.invoke(app, ["list", "hf:"])
    assert out.exit_code == 0, out.output
    for option in ("revision", "trust_remote_code", "pooling", "max_length", "image_size"):
        assert f"  {option} (" in out.output


def test_init_full_writes_every_setting_commented_out_and_each_default_builds(tmp_path):
    from safeadapt.protocols import PROTOCOLS, make_protocol
    from safeadapt.safety import FAMILIES, resolve_families
    from safeadapt.study.config import load_study

    plain, full = tmp_path / "plain.yaml", tmp_path / "full.yaml"
    assert runner.invoke(app, ["init", str(plain)]).exit_code == 0
    assert runner.invoke(app, ["init", str(full), "--full"]).exit_code == 0
    assert load_study(full) == load_study(plain)  # the additions are comments only
    text = full.read_text()
    block = text[text.index("# protocols:") :]
    raw = yaml.safe_load("\n".join(line[2:] for line in block.splitlines()))
    assert set(raw["protocols"]) == set(PROTOCOLS.names())
    assert set(raw["safety"]) == set(FAMILIES.names())
    for name, settings in raw["protocols"].items():
        written = {k: v for k, v in settings.items() if not (k == "method" and v is None)}
        assert make_protocol(name, **written).config == make_protocol(name).config, name
    families = resolve_families({k: v or {} for k, v in raw["safety"].items()})
    assert families == resolve_families({})  # the written defaults are the defaults


# Settings that take free-form values (module names, feature taps, nested configs with their own
# rules, the families mapping): everything else must declare its range.
FREE_FORM = {"tune.lora.targets", "regularizer.ldifs.layers", "targets", "layers", "lp", "head",
             "families"}  # fmt: skip
NEAR_MISSES = (-1, 0, 1.5, 10**12, True, "not-a-name", (), ("not-a-name",), (-1.0,), (10**12,))


def _configs():
    from safeadapt.protocols import PROTOCOLS
    from safeadapt.protocols.train_config import CHOICES, Optimizer, Stopping
    from safeadapt.safety import FAMILIES

    out = {f"protocol {n}": PROTOCOLS.get(n).Config for n in PROTOCOLS.names()}
    out |= {f"family {n}": FAMILIES.get(n).Config for n in FAMILIES.names()}
    out |= {"optimizer": Optimizer, "stopping": Stopping}
    out |= {f"{field} {n}": cls for field, options in CHOICES.items() for n, cls in options.items()}
    from safeadapt.safety.suite import SafetyConfig

    return out | {"safety": SafetyConfig}


def test_every_setting_says_what_it_does_and_declares_its_range():
    from safeadapt.settings_info import describe_settings

    for owner, cls in _configs().items():
        for s in describe_settings(cls):
            assert s.doc, f"{owner} {s.name}: no doc"
            assert s.allowed or s.name in FREE_FORM, f"{owner} {s.name}: no declared range"


def test_every_declared_range_is_enforced_with_the_settings_name():
    """For every setting with a rule, each near miss the rule refuses is refused by building the
    config (the path a study's YAML takes), and the error names the setting; the default passes."""
    from safeadapt.config import _declared, build_config

    for owner, cls in _configs().items():
        build_config(cls, {}, owner)
        for name, (rule, _) in _declared(cls).items():
            if rule is None:
                continue
            outside = [v for v in NEAR_MISSES if rule.problem(v) is not None]
            assert outside, f"{owner} {name}: no near miss is outside its range"
            for value in outside:
                with pytest.raises(InvalidConfig, match=f"[.']{name}'"):
                    build_config(cls, {name: value}, owner)


def test_a_list_setting_points_at_the_entry_and_bounds_its_length():
    from safeadapt.safety import resolve_families

    with pytest.raises(
        InvalidConfig, match=r"'detectors' entry 1 must be one of .*Did you mean 'knn'"
    ):
        resolve_families({"detection": {"detectors": ["msp", "knnn"]}})
    with pytest.raises(InvalidConfig, match=r"'c_grid' lists 101 entries, above the limit of 100"):
        resolve_families({"effective_robustness": {"c_grid": [1.0] * 101}})
    out = runner.invoke(app, ["list", "wise-ft", "--json"])
    alphas = {s["name"]: s for s in json.loads(out.output)["settings"]}["alphas"]
    assert alphas["allowed"] == "a list of at least 1 entry, each in [0, 1], at most 1,000 entries"


def test_a_reader_that_goes_away_ends_the_output_quietly():
    """A reader that has left before anything is written (the read end of the pipe is closed
    first, so the outcome does not depend on who wins a race, as it does with ``| head``)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    exe = Path(sys.executable).with_name("safeadapt")
    read, write = os.pipe()
    os.close(read)
    try:
        out = subprocess.run(
            [str(exe), "list", "ft"], stdout=write, stderr=subprocess.PIPE, text=True, timeout=120
        )
    finally:
        os.close(write)
    assert out.stderr == "", out.stderr
    assert out.returncode == 141  # SIGPIPE's code: quietly, and not 0 (nothing reached a reader)


def test_backbone_options_declare_their_range_and_it_is_enforced_before_loading(monkeypatch):
    """A backbone's size and choice options carry their rule on the loader's signature
    (Annotated): `list` shows it and load_backbone refuses a value outside it before the
    loader runs (nothing is allocated for a max_length of ten million)."""
    from safeadapt.backbones import BACKBONES, huggingface, load_backbone
    from safeadapt.config import option_rules

    ruled = {"max_length", "image_size", "pooling", "trust_remote_code"}
    for name in ("minilm", "efficientnet-lite0", "hf:"):
        for s in describe(name).settings:
            assert s.allowed or s.name not in ruled, f"{name} {s.name}: no declared range"

    def not_loaded(*args, **kwargs):
        raise AssertionError("the loader ran before its options were checked")

    monkeypatch.setattr(huggingface, "load_minilm", not_loaded)
    for name in ("minilm", "efficientnet-lite0"):
        rules = option_rules(BACKBONES.get(name))
        assert rules, name
        for option, rule in rules.items():
            outside = [v for v in NEAR_MISSES if v is not None and rule.problem(v) is not None]
            assert outside, f"{name} {option}: no near miss is outside its range"
            for value in outside:
                with pytest.raises(InvalidConfig, match=f"option '{option}'"):
                    load_backbone(name, **{option: value})


def test_every_backbone_and_task_option_says_what_it_does_and_its_range():
    """The same bar as the configs' settings: a line of meaning for every option a study can
    pass to a backbone, an hf: model or a built-in task, and a declared range for each except
    the free texts (a name, a revision)."""
    free_text = {"name", "revision"}
    for kind, (names, describe_one) in registries().items():
        if kind not in ("backbones", "backbone sources", "tasks"):
            continue
        for name in names:
            entry = describe_one(name)
            if kind != "backbone sources" or entry.settings:
                assert entry.summary, f"{kind} {name}: no summary"
            for s in entry.settings:
                assert s.doc, f"{kind} {name} {s.name}: no doc"
                assert s.allowed or s.name in free_text, f"{kind} {name} {s.name}: no range"
