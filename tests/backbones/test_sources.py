"""Backbone sources: a prefix handler registered in one module is loaded, refused and checked
like ``hf:`` and ``module:`` -- no branch elsewhere."""

import pytest
from torch import nn

from safeadapt.backbones import TorchModuleBackbone, load_backbone
from safeadapt.backbones.sources import SOURCES, Source, register_source, source_of
from safeadapt.errors import UntrustedCode
from safeadapt.study.specs import BackboneSpec

BUILT = []


def _load(spec, options):
    width = int(spec.removeprefix("toy:"))
    BUILT.append(spec)
    net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, width))
    return TorchModuleBackbone(net, feature_dim=width, image_size=8, name=spec)


def _runs_code(spec, options):
    return f"backbone {spec!r} runs a plugin" if options.get("plugin") else None


if "toy:" not in SOURCES:
    register_source(
        Source(
            prefix="toy:",
            form="toy:<width>",
            load=_load,
            runs_code=_runs_code,
            check=lambda spec, options: not options.get("plugin"),
        )
    )


def test_a_registered_source_loads_refuses_and_checks_by_its_prefix(monkeypatch):
    monkeypatch.delenv("SAFEADAPT_TRUST_CODE", raising=False)
    assert source_of("toy:5").form == "toy:<width>" and source_of("minilm") is None
    backbone = load_backbone("toy:5")
    assert backbone.feature_dim == 5 and not backbone.training
    with pytest.raises(UntrustedCode, match="runs a plugin"):
        load_backbone("toy:5", plugin=True)
    BUILT.clear()
    assert BackboneSpec("toy:4").check("image") is not None and BUILT == ["toy:4"]
    BUILT.clear()
    with pytest.raises(UntrustedCode):  # validate refuses before building anything
        BackboneSpec("toy:4", {"plugin": True}).check("image")
    assert BUILT == []
