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


def test_a_source_carries_its_export_base_model_and_a_backbone_its_lora_targets():
    from safeadapt.backbones import base_model
    from safeadapt.protocols.tuning import lora_targets

    # export: the Hub id a model card names, from the source (or the built-in's own)
    assert base_model("hf:google/vit-base-patch16-224") == "google/vit-base-patch16-224"
    assert base_model("minilm") == "sentence-transformers/all-MiniLM-L6-v2"
    assert base_model("toy:5") is None and base_model("efficientnet-lite0") is None
    # LoRA: a plain module gets the generic rule; a backbone class may declare its own
    assert lora_targets(load_backbone("toy:5")) == ["1"]  # its only Linear

    class Declared(TorchModuleBackbone):
        def lora_targets(self):
            return ["0"]

    net = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2))
    assert lora_targets(TorchModuleBackbone(net, feature_dim=2, name="plain")) == ["0", "1"]
    assert lora_targets(Declared(net, feature_dim=2, name="declared")) == ["0"]
