"""Parameter-efficient tuning: LoRA (peft), BitFit, last-k — what moves and what stays."""

import copy

import pytest
import torch

from safeadapt.config import build_config
from safeadapt.errors import InvalidConfig
from safeadapt.model import Classifier
from safeadapt.protocols import FitContext
from safeadapt.protocols.train_config import TrainConfig
from safeadapt.protocols.train_loop import finetune_in_context
from safeadapt.protocols.tuning import LoRA, apply_tuning, lora_targets

# keep_start off: these tests check what moves, not whether two steps beat the start
STEPS = {
    "epochs": 1,
    "max_steps": 2,
    "batch_size": 16,
    "lr": 1e-2,
    "head_lr": 1e-2,
    "keep_start": False,
}


@pytest.fixture
def small(image_task):
    return image_task.subsample(max_train=48, max_eval=32)


def _fit(small, factory, cache, **cfg):
    model = Classifier(factory(), small.num_classes)
    before = copy.deepcopy(model.state_dict())
    ctx = FitContext(small, factory, 0, cache, device="cpu", show_progress=False)
    info = finetune_in_context(model, ctx, build_config(TrainConfig, {**STEPS, **cfg}, "t"))
    return model, before, info


def test_default_lora_targets(minilm, effnet):
    assert lora_targets(minilm) == ["query", "value"]
    assert set(lora_targets(effnet)) == {"_conv_head", "_expand_conv", "_project_conv"}


def test_lora_trains_only_adapters_and_merges_back(small, effnet_factory, feature_cache):
    model, before, info = _fit(small, effnet_factory, feature_cache, tune="lora", merge_lora=False)
    state = model.state_dict()
    lora = {k: v for k, v in state.items() if "lora_" in k}
    assert lora and info["trainable_parameters"] == sum(v.numel() for v in lora.values()) + sum(
        p.numel() for p in model.head.parameters()
    )
    for k, v in state.items():  # base weights (now under base_layer) untouched
        if "lora_" in k or k.startswith("head."):
            continue
        original = k.replace(".base_layer", "")
        assert torch.equal(v, before[original]), k
    assert any(not torch.equal(v, torch.zeros_like(v)) for k, v in lora.items() if "lora_B" in k)

    merged, before2, info2 = _fit(small, effnet_factory, feature_cache, tune="lora")
    assert set(merged.state_dict()) == set(before2)  # the original structure
    assert info2["tuning"]["lora_merged_modules"] > 10
    changed = [k for k in before2 if not torch.equal(merged.state_dict()[k], before2[k])]
    assert changed and all(
        any(t in k for t in ("_expand_conv", "_project_conv", "_conv_head", "head."))
        for k in changed
    )


def test_bitfit_moves_only_biases(small, effnet_factory, feature_cache):
    model, before, info = _fit(small, effnet_factory, feature_cache, tune="bitfit")
    for k, v in model.state_dict().items():
        if k.startswith("backbone.") and not k.endswith("bias") and "running" not in k:
            assert torch.equal(v, before[k]), k
    assert any(
        not torch.equal(model.state_dict()[k], before[k])
        for k in before
        if k.startswith("backbone.") and k.endswith("bias")
    )
    total = sum(p.numel() for p in model.parameters())
    assert info["trainable_parameters"] < 0.05 * total
    assert all(p.requires_grad for p in model.parameters())  # restored after training


def test_last_k_blocks(small, effnet_factory, feature_cache):
    model, before, info = _fit(small, effnet_factory, feature_cache, tune="last-k", last_k=2)
    state = model.state_dict()
    early = [k for k in before if k.startswith("backbone.net._blocks.3.") and "running" not in k]
    late = [k for k in before if k.startswith("backbone.net._blocks.15.") and k.endswith("weight")]
    assert early and all(torch.equal(state[k], before[k]) for k in early)
    assert any(not torch.equal(state[k], before[k]) for k in late)
    assert info["tuning"]["last_k"] == 2


def test_bad_tuning_settings_are_named(minilm):
    with pytest.raises(InvalidConfig, match="'tune' must be one of"):
        TrainConfig(tune="prefix")
    with pytest.raises(InvalidConfig, match="'tune.lora.r'"):
        TrainConfig(tune={"lora": {"r": 0}})
    with pytest.raises(InvalidConfig, match="Did you mean 'ldifs'"):
        TrainConfig(regularizer="ldfis")
    model = Classifier(minilm, 2)
    cfg = TrainConfig(tune=LoRA(targets=("nonexistent",)))
    with pytest.raises(ValueError):
        apply_tuning(copy.deepcopy(model), cfg)
