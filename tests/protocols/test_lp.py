import numpy as np
import pytest
import torch

from safeadapt.protocols import FitContext, make_protocol
from safeadapt.protocols.lp import LPConfig, fit_linear_probe
from safeadapt.run import run_protocol


def _blobs(n, d, k, seed, sep=2.0):
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(k, d, generator=g) * sep
    y = torch.arange(n) % k
    return centers[y] + torch.randn(n, d, generator=g), y


def test_lp_matches_scikit_learn_on_the_same_objective():
    from sklearn.linear_model import LogisticRegression

    x, y = _blobs(400, 20, 3, seed=0, sep=0.6)
    v, vy = _blobs(200, 20, 3, seed=1, sep=0.6)
    head = fit_linear_probe(x, y, v, vy, 3, LPConfig(c_grid=(0.1,), standardize=False))
    sk = LogisticRegression(C=0.1, max_iter=2000, tol=1e-8).fit(x.numpy(), y.numpy())
    ours = head.logits(v).argmax(1).numpy()
    assert (ours == sk.predict(v.numpy())).mean() > 0.98
    np.testing.assert_allclose(head.weight.numpy(), sk.coef_, atol=2e-3)


def test_lp_chooses_c_on_validation_and_folds_standardisation():
    x, y = _blobs(300, 10, 2, seed=0, sep=0.5)
    x = x * 100 + 7  # badly scaled features
    v, vy = _blobs(300, 10, 2, seed=1, sep=0.5)
    v = v * 100 + 7
    head = fit_linear_probe(x, y, v, vy, 2, LPConfig(c_grid=(1e-4, 1.0)))
    assert [s["C"] for s in head.sweep] == [1e-4, 1.0]
    best = max(head.sweep, key=lambda s: (s["val_accuracy"], -s["val_nll"]))
    assert head.C == best["C"]
    acc = (head.logits(v).argmax(1) == vy).float().mean().item()
    assert acc == pytest.approx(head.val_accuracy, abs=1e-6)


def _fit(name, task, factory, cache, seed=0, **params):
    proto = make_protocol(name, params)
    return run_protocol(proto, task, factory, seed, cache=cache, show_progress=False)


def test_lp_beats_chance_clearly_on_real_text(text_task, minilm_factory, feature_cache):
    record, result = _fit("lp", text_task, minilm_factory, feature_cache)
    assert record.test.accuracy > 0.65  # chance is ~0.5 (binary, near balanced)
    assert result.frozen_backbone
    assert set(record.metrics) == {"test", "ood:tweets", "ood:amazon", "ood:nyt"}


def test_lp_beats_chance_clearly_on_real_images(image_task, effnet_factory, feature_cache):
    record, _ = _fit("lp", image_task, effnet_factory, feature_cache)
    assert record.test.accuracy > 0.5  # chance is 0.1 (ten digits)


def test_lp_does_not_change_the_backbone(text_task, minilm_factory, minilm, feature_cache):
    _, result = _fit("lp", text_task, minilm_factory, feature_cache)
    for (k, a), (_, b) in zip(
        result.model.backbone.state_dict().items(), minilm.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), k


def test_lp_reuses_cached_features_across_seeds(text_task, minilm_factory, tmp_path):
    from safeadapt.data.features import FeatureCache

    cache = FeatureCache(tmp_path)
    _fit("lp", text_task, minilm_factory, cache, seed=0)
    misses = cache.misses
    _fit("lp", text_task, minilm_factory, cache, seed=1)
    assert cache.misses == misses and cache.hits >= 2 + len(text_task.eval_splits())


def test_lp_model_logits_match_cached_feature_logits(text_task, minilm_factory, feature_cache):
    proto = make_protocol("lp")
    result = proto.fit(FitContext(text_task, minilm_factory, 0, feature_cache, show_progress=False))
    from safeadapt.protocols.train_loop import predict_logits

    split = text_task.test.sample(16, seed=0)
    direct = predict_logits(result.model, split)
    cached = result.model.head(
        feature_cache.get(result.model.backbone, split, show_progress=False).features
    )
    torch.testing.assert_close(direct, cached.detach(), atol=1e-3, rtol=1e-3)
