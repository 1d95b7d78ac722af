"""LDIFS and L2-SP: zero at the pretrained model, growing as it moves; hand-checked values."""

import pytest
import torch

from safeadapt.model import Classifier
from safeadapt.protocols import FitContext
from safeadapt.protocols.regularizers import L2SP, build_regularizers
from safeadapt.protocols.train_loop import TrainConfig


@pytest.fixture
def small(image_task):
    return image_task.subsample(max_train=48, max_eval=32)


def _taps(model, split, layers):
    model.eval()
    with torch.no_grad():
        batch = model.backbone.preprocess(split.inputs[:16])
        return model(batch, layers=layers)[1], torch.arange(16)


def test_ldifs_is_zero_at_the_pretrained_model_and_grows(small, effnet_factory, feature_cache):
    model = Classifier(effnet_factory(), small.num_classes)
    ctx = FitContext(small, effnet_factory, 0, feature_cache, show_progress=False)
    (reg,) = build_regularizers(ctx, model, TrainConfig(regularizer="ldifs", reg_weight=10.0))
    assert reg.layers == model.backbone.default_layers and len(reg.layers) == 5
    taps, index = _taps(model, small.train, reg.layers)
    assert reg(model, taps, index, {}).item() == pytest.approx(0.0, abs=1e-9)
    penalties = []
    for scale in (0.01, 0.1):
        moved = Classifier(effnet_factory(), small.num_classes)
        torch.manual_seed(0)
        with torch.no_grad():
            for p in moved.backbone.parameters():
                p.add_(torch.randn_like(p) * p.std().nan_to_num(0) * scale)
        taps, index = _taps(moved, small.train, reg.layers)
        penalties.append(reg(moved, taps, index, {}).item())
    assert 0 < penalties[0] < penalties[1]


def test_ldifs_uses_the_cache_for_the_original_features(small, effnet_factory, feature_cache):
    model = Classifier(effnet_factory(), small.num_classes)
    ctx = FitContext(small, effnet_factory, 0, feature_cache, show_progress=False)
    build_regularizers(ctx, model, TrainConfig(regularizer="ldifs"))
    hits = feature_cache.hits
    build_regularizers(
        ctx, Classifier(effnet_factory(), small.num_classes), TrainConfig(regularizer="ldifs")
    )
    assert feature_cache.hits == hits + 1  # second build: no forward pass over the train split


def test_l2sp_by_hand(effnet_factory):
    model = Classifier(effnet_factory(), 3)
    reg = L2SP(model, weight=0.5)
    assert reg(model, {}, torch.arange(1), {}).item() == 0.0
    first = next(model.backbone.parameters())
    with torch.no_grad():
        first.add_(0.1)
    expected = 0.5 * (0.1**2) * first.numel()
    assert reg(model, {}, torch.arange(1), {}).item() == pytest.approx(expected, rel=1e-4)
    first.requires_grad_(False)  # frozen parameters cannot move: not penalised
    assert reg(model, {}, torch.arange(1), {}).item() == 0.0


def test_live_ldifs_equals_cached_ldifs(small, effnet_factory, feature_cache):
    model = Classifier(effnet_factory(), small.num_classes)
    ctx = FitContext(small, effnet_factory, 0, feature_cache, show_progress=False)
    (cached,) = build_regularizers(ctx, model, TrainConfig(regularizer="ldifs"))
    (live,) = build_regularizers(ctx, model, TrainConfig(regularizer="ldifs", reg_cached=False))
    moved = Classifier(effnet_factory(), small.num_classes)
    with torch.no_grad():
        for p in moved.backbone.parameters():
            p.mul_(1.05)
    taps, index = _taps(moved, small.train, cached.layers)
    batch = moved.backbone.preprocess(small.train.inputs[:16])
    a, b = cached(moved, taps, index, batch).item(), live(moved, taps, index, batch).item()
    assert a > 0 and a == pytest.approx(b, rel=1e-3)
