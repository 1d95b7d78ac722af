"""LDIFS and L2-SP: zero at the pretrained model, growing as it moves; hand-checked values."""

import pytest
import torch

from safeadapt.model import Classifier
from safeadapt.protocols import FitContext
from safeadapt.protocols.regularizers import L2SP, build_regularizers
from safeadapt.protocols.train_config import TrainConfig


@pytest.fixture
def small(image_task):
    return image_task.subsample(max_train=48, max_eval=32)


def _taps(model, split, layers, pooled=False):
    model.eval()
    with torch.no_grad():
        batch = model.backbone.preprocess(split.inputs[:16])
        rows = torch.arange(len(split.inputs[:16]))
        return model(batch, layers=layers, pooled=pooled)[1], rows, batch


def test_ldifs_is_zero_at_the_pretrained_model_and_grows(small, effnet_factory, feature_cache):
    model = Classifier(effnet_factory(), small.num_classes)
    ctx = FitContext(small, effnet_factory, 0, feature_cache, show_progress=False)
    (reg,) = build_regularizers(ctx, model, TrainConfig(regularizer={"ldifs": {"weight": 10.0}}))
    assert reg.layers == model.backbone.default_layers and len(reg.layers) == 5
    assert not reg.pooled
    taps, index, batch = _taps(model, small.train, reg.layers)
    assert all(t.ndim == 3 for t in taps.values())  # (B, positions, channels)
    assert reg(model, taps, index, batch).item() == pytest.approx(0.0, abs=1e-9)
    penalties = []
    for scale in (0.01, 0.1):
        moved = Classifier(effnet_factory(), small.num_classes)
        torch.manual_seed(0)
        with torch.no_grad():
            for p in moved.backbone.parameters():
                p.add_(torch.randn_like(p) * p.std().nan_to_num(0) * scale)
        taps, index, batch = _taps(moved, small.train, reg.layers)
        penalties.append(reg(moved, taps, index, batch).item())
    assert 0 < penalties[0] < penalties[1]


def test_ldifs_by_hand_on_unpooled_text_taps_ignores_padding(minilm_factory, text_task):
    """2 - 2 cos per real token, averaged over tokens, taps and the batch."""
    import torch.nn.functional as F

    from safeadapt.protocols.regularizers import LDIFS

    layers = ("layer.1", "layer.5")
    reg = LDIFS(minilm_factory(), layers, weight=3.0)
    moved = Classifier(minilm_factory(), 2)
    with torch.no_grad():
        for p in moved.backbone.parameters():
            p.mul_(1.02)
    texts = ["a short one", "a much longer sentence with many more tokens in it"]
    taps, index, batch = _taps(moved, type("S", (), {"inputs": texts})(), layers)
    mask = batch["attention_mask"].float()
    assert mask[0].sum() < mask[1].sum()  # padding present
    orig = reg.originals(batch)
    expected = []
    for b in range(2):
        per = []
        for layer in layers:
            cos = F.cosine_similarity(taps[layer][b], orig[layer][b], dim=-1)  # (T,)
            per.append(((2 - 2 * cos) * mask[b]).sum() / mask[b].sum())
        expected.append(torch.stack(per).mean())
    value = reg(moved, taps, index, batch).item()
    assert value == pytest.approx(3.0 * torch.stack(expected).mean().item(), rel=1e-4)
    assert value > 0


def test_with_dropout_off_training_mode_gives_a_zero_penalty(minilm_factory, text_task):
    """Train mode + disable_stochastic = eval features, so LDIFS measures drift only."""
    from safeadapt.protocols.regularizers import LDIFS

    layers = ("embeddings", "layer.5")
    model = Classifier(minilm_factory(), 2)
    reg = LDIFS(minilm_factory(), layers, weight=10.0)
    batch = model.backbone.preprocess(list(text_task.train.inputs[:8]))
    model.train()
    _, noisy = model(batch, layers=layers, pooled=False)
    assert reg(model, noisy, torch.arange(8), batch).item() > 1e-4  # dropout noise, not drift
    with model.backbone.stochastic_off() as n:
        assert n > 0 and model.training
        _, quiet = model(batch, layers=layers, pooled=False)
    assert reg(model, quiet, torch.arange(8), batch).item() == pytest.approx(0.0, abs=1e-10)
    _, again = model(batch, layers=layers, pooled=False)  # restored on exit
    assert reg(model, again, torch.arange(8), batch).item() > 1e-4


def test_stochastic_depth_of_efficientnet_is_switched_off_and_restored(effnet_factory, small):
    model = Classifier(effnet_factory(), small.num_classes)
    batch = model.backbone.preprocess(small.train.inputs[:8])
    model.eval()
    with torch.no_grad():
        clean = model(batch)
        model.train()
        for m in model.modules():  # BatchNorm frozen, as fine-tuning does by default
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.eval()
        torch.manual_seed(0)
        noisy = model(batch)
        with model.backbone.stochastic_off():
            quiet = model(batch)
    assert not torch.allclose(noisy, clean, atol=1e-4)  # drop connect acts in train mode
    torch.testing.assert_close(quiet, clean)
    assert model.backbone.net._global_params.drop_connect_rate == pytest.approx(0.2)


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


def test_ldifs_runs_each_example_through_the_pretrained_copy_once(minilm_factory, text_task):
    """Remembered taps give the penalty of recomputed ones, with batches (and so padding)
    regrouped between epochs and batches half remembered, half new."""
    from safeadapt.protocols.regularizers import LDIFS

    layers = ("embeddings", "layer.3")
    texts = list(text_task.train.inputs[:12])
    moved = Classifier(minilm_factory(), 2)
    with torch.no_grad():
        for p in moved.backbone.parameters():
            p.mul_(1.02)
    remembering = LDIFS(minilm_factory(), layers, 1.0)
    recomputing = LDIFS(minilm_factory(), layers, 1.0, memo_bytes=0)
    epochs = [
        [[0, 1, 2, 3], [4, 5]],  # 6 of 12 seen
        [[4, 7, 0, 9], [11, 2, 6], [1, 3, 5, 8, 10]],  # mixed batches
        [[11, 10, 9, 8, 7, 6], [5, 4, 3, 2, 1, 0]],
    ]
    for batches in epochs:
        for rows in batches:
            batch = moved.backbone.preprocess([texts[i] for i in rows])
            with torch.no_grad():
                taps = moved(batch, layers=layers, pooled=False)[1]
            index = torch.tensor(rows)
            a = remembering.distance(taps, batch, index)
            b = recomputing.distance(taps, batch, index)
            assert torch.allclose(a, b, atol=1e-5) and (a > 0).all()
    assert remembering.stats()["frozen_passes"] == 12
    assert remembering.stats()["reused_from_memory"] == 30 - 12  # 30 example passes in all
    assert recomputing.stats()["frozen_passes"] == 30
    assert recomputing.stats()["reused_from_memory"] == 0
