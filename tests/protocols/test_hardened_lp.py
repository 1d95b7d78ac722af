"""LP-stage hardening (VAT, UDP, soup of heads) on real cached features."""

import pytest
import torch

from safeadapt.errors import InvalidConfig
from safeadapt.protocols import FitContext, make_protocol
from safeadapt.protocols.hardened_lp import HardenedLPConfig, udp_delta, vat_loss


@pytest.fixture(scope="module")
def feats(text_task, minilm, feature_cache):
    from safeadapt.protocols.lp import cached_split_features

    ctx = FitContext(text_task, lambda: minilm, 0, feature_cache, show_progress=False)
    return cached_split_features(ctx, minilm, ("train",))["train"]


def test_vat_smoothness_is_non_negative_and_zero_for_a_constant_head(feats):
    x = (feats[:32] - feats.mean(0)) / feats.std(0)
    cfg = HardenedLPConfig(method="vat")
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(2, x.shape[1]) * 0.1
    assert vat_loss(w, torch.zeros(2), x, cfg, gen).item() > 0
    assert vat_loss(
        torch.zeros(2, x.shape[1]), torch.zeros(2), x, cfg, gen
    ).item() == pytest.approx(0.0, abs=1e-9)


def test_udp_stays_in_the_ball_and_raises_entropy(feats):
    x = (feats[:32] - feats.mean(0)) / feats.std(0)
    cfg = HardenedLPConfig(method="udp", udp_eps=0.2)
    w, b = torch.randn(2, x.shape[1]) * 0.2, torch.zeros(2)
    delta = udp_delta(w, b, x, cfg)
    assert delta.abs().max().item() <= 0.2 + 1e-6

    def entropy(z):
        p = (z @ w.T + b).softmax(1)
        return -(p * p.log()).sum(1).mean().item()

    assert entropy(x + delta) > entropy(x)


@pytest.mark.parametrize("name", ["lp-vat", "lp-udp", "lp-soup"])
def test_hardened_heads_learn_the_task(name, text_task, minilm_factory, feature_cache):
    ctx = FitContext(text_task, minilm_factory, 0, feature_cache, show_progress=False)
    result = make_protocol(name, {"epochs": 15}).fit(ctx)
    assert result.frozen_backbone and result.info["method"] == name.split("-")[1]
    lp = make_protocol("lp").fit(ctx)
    assert result.info["val_accuracy"] > 0.6  # binary sentiment: above chance
    assert result.info["val_accuracy"] >= lp.info["val_accuracy"] - 0.05  # as good as plain LP


def test_the_protocol_fixes_the_method():
    with pytest.raises(InvalidConfig, match="use protocol 'lp-udp'"):
        make_protocol("lp-vat", {"method": "udp"})
    with pytest.raises(InvalidConfig, match="'soup_heads'"):
        make_protocol("lp-soup-ft", {"head": {"soup_heads": 0}})


def test_hardening_knobs_act_at_their_defaults(text_task, minilm_factory, feature_cache):
    """UDP's term weighs in the loss, the soup's heads stay different, and both heads predict
    differently from plain LP."""
    ctx = FitContext(text_task, minilm_factory, 0, feature_cache, show_progress=False)
    feats = feature_cache.get(minilm_factory(), text_task.test, show_progress=False)["features"]
    lp = make_protocol("lp").fit(ctx)

    def preds(result):
        return result.model.head(feats).argmax(1)

    udp = make_protocol("lp-udp").fit(ctx)
    effect = udp.info["head_effect"]
    assert effect["term_to_loss"] > 0.3
    vat = make_protocol("lp-vat").fit(ctx)
    assert vat.info["head_effect"]["term_to_loss"] > 0.01
    soup = make_protocol("lp-soup").fit(ctx)
    effect = soup.info["head_effect"]
    assert effect["head_pairwise_disagreement"] > 0.05 and effect["head_pairwise_cosine"] < 0.8
    for result in (udp, soup):
        assert (preds(result) != preds(lp)).float().mean().item() > 0.0
        assert result.info["head_effect"]["val_disagreement_with_lp"] > 0.0
    copies = make_protocol("lp-soup", {"soup_mask": False}).fit(ctx).info["head_effect"]
    assert copies["head_pairwise_cosine"] > effect["head_pairwise_cosine"]


def test_hardened_heads_keep_lp_scale_and_ignore_constant_dimensions(feats):
    """Same L2 as plain LP: weight norms stay on LP's scale (AdamW heads had reached 1e3-1e5 times
    it), and a constant feature gets no weight, so moving it at test time changes nothing."""
    from safeadapt.protocols.hardened_lp import fit_hardened_head
    from safeadapt.protocols.lp import fit_linear_probe

    x = feats.clone()
    x[:, 0] = 0.25  # a constant dimension (MiniLM has three)
    y = (x[:, 1] > x[:, 1].median()).long()
    tr, va = slice(0, 160), slice(160, None)
    lp = fit_linear_probe(x[tr], y[tr], x[va], y[va], 2)
    for method in ("vat", "udp", "soup"):
        cfg = HardenedLPConfig(method=method, epochs=10)
        head = fit_hardened_head(x[tr], y[tr], x[va], y[va], 2, cfg)
        assert head.weight.norm() < 10 * lp.weight.norm(), method
        assert head.weight[:, 0].abs().max().item() == 0.0, method
        moved = x[va].clone()
        moved[:, 0] = 1e3
        assert torch.allclose(head.logits(moved), head.logits(x[va]))
        assert head.C == lp.C  # the L2 strength plain LP picked
