"""LP-stage hardening (VAT, UDP, soup of heads) on real cached features."""

import pytest
import torch

from safeadapt.errors import InvalidConfig
from safeadapt.protocols import FitContext, make_protocol
from safeadapt.protocols.hardening import HardenedLPConfig, udp_delta, vat_loss


@pytest.fixture(scope="module")
def feats(text_task, minilm, feature_cache):
    from safeadapt.protocols.lp import cached_split_features

    ctx = FitContext(text_task, lambda: minilm, 0, feature_cache, show_progress=False)
    return cached_split_features(ctx, minilm)[0]


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
    feats = feature_cache.get(minilm_factory(), text_task.test, show_progress=False).features
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
    from safeadapt.protocols.hardening import fit_hardened_head
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


def test_without_their_term_vat_and_udp_heads_stay_at_plain_lps_optimum(feats):
    """They start at plain LP's head (the protocol's own fit, moved to standardised
    coordinates): with the term weighed 0, the same predictions and the same logits."""
    from safeadapt.protocols.hardening import fit_hardened_head
    from safeadapt.protocols.lp import fit_linear_probe

    y = (feats[:, 1] > feats[:, 1].median()).long()
    tr, va = slice(0, 160), slice(160, None)
    lp = fit_linear_probe(feats[tr], y[tr], feats[va], y[va], 2)
    for cfg in (
        HardenedLPConfig(method="vat", vat_alpha=0.0, epochs=3),
        HardenedLPConfig(method="udp", udp_beta=0.0, epochs=3),
    ):
        head = fit_hardened_head(feats[tr], y[tr], feats[va], y[va], 2, cfg)
        assert head.effect["val_disagreement_with_lp"] == 0.0
        # mini-batch SGD jitters around the optimum: logits within 0.05 (they reach +-4)
        assert torch.allclose(head.logits(feats[va]), lp.logits(feats[va]), atol=0.05)
        assert head.effect["weight_norm_standardised"] == pytest.approx(
            head.effect["lp_weight_norm_standardised"], rel=1e-2
        )


def test_closed_form_perturbation_gradients_match_autograd(feats):
    """VAT's power-iteration direction and UDP's entropy ascent use the linear head's gradients
    in closed form; autograd on the stated objectives gives the same directions."""
    import torch.nn.functional as F

    from safeadapt.protocols.hardening import _kl, entropy_grad, vat_direction

    x = ((feats[:64] - feats.mean(0)) / feats.std(0)).double()
    w, b = torch.randn(3, x.shape[1], dtype=torch.float64) * 0.3, torch.randn(3).double()
    cfg = HardenedLPConfig(method="vat")
    logits = x @ w.T + b
    r = vat_direction(w, logits, cfg, torch.Generator().manual_seed(1))
    d = torch.randn(x.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    d = F.normalize(d, dim=1).requires_grad_(True)
    (g,) = torch.autograd.grad(_kl(logits, (x + cfg.vat_xi * d) @ w.T + b), d)
    assert torch.allclose(r, cfg.vat_eps * F.normalize(g, dim=1), atol=1e-9)

    z = logits.clone().requires_grad_(True)
    p = z.softmax(1)
    (gz,) = torch.autograd.grad(-(p * p.log()).sum(), z)
    assert torch.allclose(entropy_grad(logits), gz, atol=1e-12)


@pytest.mark.parametrize(("method", "heads"), [("vat", 1), ("udp", 1), ("soup", 4)])
def test_batch_gradients_match_autograd_on_the_stated_objective(feats, method, heads):
    """The closed-form step of every method equals autograd on the objective the module
    states: mean over heads of CE + term + reg * ||w * m||^2, masks included."""
    import torch.nn.functional as F

    from safeadapt.protocols.hardening import batch_gradients

    x = ((feats[:48] - feats.mean(0)) / feats.std(0)).double()
    y = torch.arange(48) % 3
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(heads, 3, x.shape[1], generator=gen, dtype=torch.float64) * 0.2
    b = torch.randn(heads, 3, generator=gen, dtype=torch.float64)
    mask = (torch.rand(heads, 1, x.shape[1], generator=gen) > 0.3).double()
    cfg, reg = HardenedLPConfig(method=method, vat_alpha=0.7, udp_beta=1.3), 0.01
    gw, gb, task, term = batch_gradients(
        method, x, y, w, b, mask, reg, cfg, torch.Generator().manual_seed(5)
    )

    w_, b_ = w.clone().requires_grad_(True), b.clone().requires_grad_(True)
    wh, again, losses, terms = w_ * mask, torch.Generator().manual_seed(5), [], []
    for i in range(heads):
        loss = F.cross_entropy(x @ wh[i].T + b_[i], y) + reg * wh[i].pow(2).sum()
        extra = torch.zeros((), dtype=torch.float64)
        if method == "vat":
            extra = cfg.vat_alpha * vat_loss(wh[i], b_[i], x, cfg, again)
        elif method == "udp":
            delta = udp_delta(wh[i], b_[i], x, cfg)
            extra = cfg.udp_beta * F.cross_entropy((x + delta) @ wh[i].T + b_[i], y)
        losses.append(loss + extra)
        terms.append(extra.detach())
    torch.stack(losses).mean().backward()
    assert torch.allclose(gw, w_.grad, atol=1e-10) and torch.allclose(gb, b_.grad, atol=1e-10)
    assert float(term) == pytest.approx(float(sum(terms)), rel=1e-9, abs=1e-12)
    if method != "soup":
        assert float(term) > 0
    ce = sum(F.cross_entropy(x @ wh[i].T.detach() + b[i], y) for i in range(heads))
    assert float(task) == pytest.approx(float(ce), rel=1e-9)
