"""The hardened linear heads of LP-stage hardening (Trivedi, Koutra & Thiagarajan, ICLR 2023),
trained on cached, standardised frozen features: VAT, UDP and soups of heads. The protocols that
use them are ``safeadapt.protocols.hardened_lp``; what each method does is described there."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from safeadapt.config import (
    Rule,
    check_settings,
    count,
    flag,
    interval,
    non_negative_number,
    one_of,
    positive_number,
    require,
    setting,
)
from safeadapt.linear import LinearHead, fit_linear_probe
from safeadapt.protocols.base import FitContext
from safeadapt.protocols.lp import LPConfig, cached_split_features

METHODS = ("vat", "udp", "soup")


# Sizes bounded before anything is allocated.
HARDENED_LIMITS = {"epochs": 100_000, "batch_size": 65_536, "udp_steps": 1_000, "soup_heads": 1_000}


def _size(name: str) -> Rule:
    return count(1, HARDENED_LIMITS[name])


@dataclass(frozen=True)
class HardenedLPConfig:
    """The hardened LP head's training (SGD with Nesterov momentum on cached, standardised
    features) and the hardening method's strengths."""

    method: str | None = setting(None, "vat, udp or soup; set by the protocol (lp-vat, ...)",
                                 one_of(METHODS))  # fmt: skip
    epochs: int = setting(60, "passes over the cached training features", _size("epochs"))
    batch_size: int = setting(128, "training examples per SGD step", _size("batch_size"))
    # 1e-2 left soups from random block starts unconverged.
    lr: float = setting(5e-2, "SGD learning rate", positive_number())
    momentum: float = setting(0.9, "SGD Nesterov momentum, as the paper", interval(0, 1))
    # In scikit-learn's C (LP's objective). None: the C plain LP picks on validation, so the head
    # differs from LP by the hardening term only. (AdamW with weight decay 1e-3 let the heads'
    # weights grow without bound: norms 6.7e3-8.1e4 on raw features vs 14 for LP.)
    C: float | None = setting(None, "L2 strength as LP's C; null: the C plain LP picks on val",
                              positive_number())  # fmt: skip
    vat_xi: float = setting(10.0, "VAT: the finite-difference step of the power iteration",
                            positive_number())  # fmt: skip
    vat_eps: float = setting(1.0, "VAT: the adversarial perturbation's norm", positive_number())
    # The paper's 0.1 moved 1 of 400 validation predictions off plain LP's at LP's C (term / CE
    # 0.006, VADER / MiniLM, 1,200 snippets): an L2-regularised head is already smooth. 1.0:
    # term / CE 0.06, 1.5 % of predictions differ.
    vat_alpha: float = setting(1.0, "VAT: the smoothness term's weight", non_negative_number())
    udp_eps: float = setting(0.05, "UDP: the perturbation's step size", positive_number())
    udp_steps: int = setting(10, "UDP: ascent steps on the predictive entropy", _size("udp_steps"))
    # The paper's 0.01 weighs 2 % of the loss on our standardised features (term / CE 0.018 on
    # VADER, MiniLM, 1,200 snippets): the head is then a plain AdamW probe. 1.0 weighs ~1.2x CE.
    udp_beta: float = setting(1.0, "UDP: the perturbed loss's weight", non_negative_number())
    soup_heads: int = setting(20, "soup: heads averaged", _size("soup_heads"))
    # Without the mask, the heads of a convex problem converge to one head (measured: mean
    # pairwise cosine 0.986 after 60 epochs) and the soup averages copies.
    soup_mask: bool = setting(True, "soup: keep each head on its own block of feature dimensions",
                              flag())  # fmt: skip
    # A random-subspace ensemble (Ho 1998). 0 = its block alone: on VADER / MiniLM (1,200
    # snippets) 20 heads of 19 dimensions each gave val 0.743 vs LP 0.782; 0.5 gave 0.775 with
    # 4 % of predictions differing from LP and head cosine 0.51.
    soup_share: float = setting(0.5, "soup: share of the other dimensions each head also sees",
                                interval(0, 1))  # fmt: skip

    def __post_init__(self) -> None:
        check_settings(self, "hardened LP")


def _kl(p_logits: Tensor, q_logits: Tensor) -> Tensor:
    """KL(p || q) averaged over the batch, p held fixed."""
    p = p_logits.detach().softmax(1)
    return (p * (p.clamp_min(1e-12).log() - q_logits.log_softmax(1))).sum(1).mean()


def vat_direction(w: Tensor, logits: Tensor, cfg: HardenedLPConfig, gen: torch.Generator) -> Tensor:
    """``r_adv = eps * g / ||g||`` per row, from one power iteration on a random unit ``d``.

    For a linear head, ``grad_d KL(p || softmax(logits + xi * d W^T))`` is ``xi / B * (q - p) W``
    in closed form (``q`` the perturbed softmax); its positive factor drops out of the
    normalisation. ``tests/protocols/test_hardened_lp.py`` checks it against autograd.
    """
    d = F.normalize(torch.randn(logits.shape[0], w.shape[1], generator=gen, dtype=w.dtype), dim=1)
    p = logits.softmax(1)
    q = (logits + cfg.vat_xi * (d @ w.T)).softmax(1)
    return cfg.vat_eps * F.normalize((q - p) @ w, dim=1)


def vat_loss(
    w: Tensor, b: Tensor, x: Tensor, cfg: HardenedLPConfig, gen: torch.Generator
) -> Tensor:
    """The local distributional smoothness term KL(p(x) || p(x + r_adv)), ``x`` ``(B, D)``."""
    logits = x @ w.T + b
    r_adv = vat_direction(w.detach(), logits.detach(), cfg, gen)
    return _kl(logits, logits + r_adv @ w.T)  # (x + r_adv) W^T + b


def entropy_grad(logits: Tensor) -> Tensor:
    """d H / d logits per row, ``H = -sum p log p``: ``-p * (log p + H)``."""
    logp = logits.log_softmax(1)
    p = logp.exp()
    return -p * (logp - (p * logp).sum(1, keepdim=True))


def udp_delta(w: Tensor, b: Tensor, x: Tensor, cfg: HardenedLPConfig) -> Tensor:
    """A perturbation in the L-inf ball that increases the head's predictive entropy.

    Signed gradient ascent with the entropy's gradient in closed form (``entropy_grad(z) W`` for
    a linear head; checked against autograd in the tests), no autograd graph per step.
    """
    w, b = w.detach(), b.detach()
    z0 = x.detach() @ w.T + b
    delta = torch.zeros_like(x)
    step = 2.5 * cfg.udp_eps / cfg.udp_steps
    for _ in range(cfg.udp_steps):  # in place: a few ops on (B, D) per step
        g = entropy_grad(z0 + (w @ delta.T).T) @ w  # (w @ delta.T).T: 2x faster than delta @ w.T
        delta.add_(g.sign_(), alpha=step).clamp_(-cfg.udp_eps, cfg.udp_eps)
    return delta


def batch_gradients(
    method: str,
    xb: Tensor,
    yb: Tensor,
    w: Tensor,
    b: Tensor,
    mask: Tensor,
    reg: float,
    cfg: HardenedLPConfig,
    gen: torch.Generator,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Gradients of one mini-batch's objective for ``w`` ``(H, K, D)`` and ``b`` ``(H, K)``,
    in closed form, with the task CE and the hardening term (summed over heads).

    The objective is the mean over heads of ``CE(h_i) + term(h_i) + reg * ||w_i * m_i||^2``,
    ``h_i = (w_i * m_i, b_i)``; the term is VAT's ``alpha * KL(p || p(x + r_adv))`` (``p`` and
    ``r_adv`` held fixed), UDP's ``beta * CE(x + delta)`` (``delta`` held fixed), or none (soup).
    Every piece is a linear softmax head's, so there is no autograd graph and no optimiser
    bookkeeping beyond SGD's: one step costs a few small products instead of ~1 ms of
    dispatch. ``tests/protocols/test_hardened_lp.py`` checks it against autograd.
    """
    heads, k, _ = w.shape
    scale = 1.0 / (xb.shape[0] * heads)
    onehot = F.one_hot(yb, k).to(xb.dtype)
    wh = w * mask
    if heads == 1:  # einsum's dispatch costs more than a (B, D) x (D, K) product
        logits = ((wh[0] @ xb.T).T + b[0]).unsqueeze(0)
    else:
        logits = torch.einsum("bd,hkd->hbk", xb, wh) + b[:, None, :]
    logp = logits.log_softmax(-1)
    p = logp.exp()
    task = -(logp * onehot).sum((1, 2)).sum() / xb.shape[0]
    g = (p - onehot) * scale  # d CE / d logits, (H, B, K)
    grad_w = (g[0].T @ xb).unsqueeze(0) if heads == 1 else torch.einsum("hbk,bd->hkd", g, xb)
    grad_b = g.sum(1)
    term = torch.zeros(())
    if method in ("vat", "udp"):
        wi, z = wh[0], logits[0]
        if method == "vat":
            xt = xb + vat_direction(wi, z, cfg, gen)
            zt = xt @ wi.T + b[0]
            logq = zt.log_softmax(1)
            term = cfg.vat_alpha * (p[0] * (logp[0] - logq)).sum() / xb.shape[0]
            gt = cfg.vat_alpha * (logq.exp() - p[0]) * scale
        else:
            xt = xb + udp_delta(wi, b[0], xb, cfg)
            zt = xt @ wi.T + b[0]
            logq = zt.log_softmax(1)
            term = -cfg.udp_beta * (logq * onehot).sum() / xb.shape[0]
            gt = cfg.udp_beta * (logq.exp() - onehot) * scale
        grad_w[0] += gt.T @ xt
        grad_b[0] += gt.sum(0)
    grad_w = (grad_w + 2.0 * reg / heads * wh) * mask
    return grad_w, grad_b, task, term


def fit_hardened_head(
    train_x: Tensor,
    train_y: Tensor,
    val_x: Tensor,
    val_y: Tensor,
    num_classes: int,
    cfg: HardenedLPConfig,
    seed: int = 0,
) -> LinearHead:
    """A hardened linear head on raw features (standardisation folded in, as ``fit_linear_probe``).

    The objective is plain LP's -- ``CE + ||W||^2 / (2 C N)`` on standardised features, with the
    ``C`` plain LP picks on validation unless ``cfg.C`` is given -- plus the hardening term. VAT
    and UDP heads start from the plain LP optimum, so what moves them is the term alone.
    """
    require(
        cfg.method in METHODS, f"hardened LP 'method' must be one of {METHODS}; got {cfg.method!r}."
    )
    gen = torch.Generator().manual_seed(seed)
    x, v = train_x.float(), val_x.float()
    mean, std = x.mean(0), x.std(0)
    # Constant dimensions (MiniLM has 3 with std < 1e-8) carry no signal; a weight there is
    # invisible on train and, divided by their std, explodes on any input where they move.
    live = std > 1e-6 * std.max()
    std = torch.where(live, std, torch.ones_like(std))
    xs, vs = (x - mean) / std * live, (v - mean) / std * live
    y, vy = train_y.long(), val_y.long()
    n, d = xs.shape
    # Plain LP on the raw features: the fit of protocol 'lp' at its defaults (so reused
    # in-process, ``fit_linear_probe``), moved to these standardised coordinates.
    lp = fit_linear_probe(train_x, train_y, val_x, val_y, num_classes, LPConfig())
    lp_w = lp.weight * std * live  # (K, D) on standardised features
    lp_b = lp.bias + mean @ lp.weight.T  # constant dimensions' share folded into the bias
    C = cfg.C if cfg.C is not None else lp.C
    reg = 1.0 / (2.0 * C * n)
    heads = cfg.soup_heads if cfg.method == "soup" else 1
    blocks = torch.arange(d).tensor_split(heads)
    if cfg.method == "soup":  # head i starts on its own block of dimensions, zeros elsewhere
        w = torch.zeros(heads, num_classes, d)
        for i, dims in enumerate(blocks):
            w[i][:, dims] = torch.randn(num_classes, len(dims), generator=gen) / math.sqrt(
                len(dims)
            )
        b = torch.zeros(heads, num_classes)
    else:
        w, b = lp_w.clone().unsqueeze(0), lp_b.clone().unsqueeze(0)
    mask = torch.ones(heads, 1, d)
    if cfg.method == "soup" and cfg.soup_mask:
        mask = torch.zeros(heads, 1, d)
        extra = round(cfg.soup_share * d)
        for i, dims in enumerate(blocks):
            mask[i, 0, dims] = 1.0
            others = torch.randperm(d, generator=gen)[:extra]
            mask[i, 0, others] = 1.0
    mask = mask * live  # no weight on constant dimensions
    term_sum, task_sum = torch.zeros(()), torch.zeros(())  # no per-step .item()
    w.grad, b.grad = torch.zeros_like(w), torch.zeros_like(b)  # set by batch_gradients
    opt = torch.optim.SGD([w, b], lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.momentum > 0)
    steps = cfg.epochs * math.ceil(n / cfg.batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    history = []
    for epoch in range(cfg.epochs):
        order = torch.randperm(n, generator=gen)
        for start in range(0, n, cfg.batch_size):
            idx = order[start : start + cfg.batch_size]
            gw, gb, task, term = batch_gradients(
                cfg.method, xs[idx], y[idx], w, b, mask, reg, cfg, gen
            )
            w.grad.copy_(gw)
            b.grad.copy_(gb)
            task_sum += task
            term_sum += term
            opt.step()
            sched.step()
        with torch.no_grad():
            wm, bm = (w * mask).mean(0), b.mean(0)  # the soup (or the single head)
            logits = vs @ wm.T + bm
            acc = (logits.argmax(1) == vy).float().mean().item()
            nll = F.cross_entropy(logits, vy).item()
        history.append({"epoch": epoch + 1, "val_accuracy": acc, "val_nll": nll})
    wm, bm = wm.detach(), bm.detach()  # the optimum of the stated objective: the last epoch
    weight = wm / std  # (K, D) on raw features
    bias = bm - (mean / std) @ wm.T
    lp_pred = lp.logits(v).argmax(1)
    effect: dict[str, float] = {
        "method": cfg.method,
        "C": C,
        "weight_norm_standardised": float(wm.norm()),
        "lp_weight_norm_standardised": float(lp_w.norm()),
        "val_disagreement_with_lp": float((logits.argmax(1) != lp_pred).float().mean()),
        "lp_val_accuracy": lp.val_accuracy,
    }
    if cfg.method in ("vat", "udp"):  # how much the hardening term weighed against the task loss
        effect["term_to_loss"] = float(term_sum / task_sum.clamp_min(1e-12))
    if heads > 1:
        effect.update(_head_diversity((w * mask).detach(), b.detach(), vs))
    return LinearHead(weight.contiguous(), bias, C, acc, nll, history[-3:], effect)


def _head_diversity(w: Tensor, b: Tensor, x: Tensor) -> dict[str, float]:
    """Mean pairwise cosine of the heads' weights and mean pairwise disagreement of their
    predictions on ``x`` (validation): a soup of copies has cosine 1 and disagreement 0."""
    heads = w.shape[0]
    flat = F.normalize(w.reshape(heads, -1), dim=1)
    cos = flat @ flat.T
    pred = torch.stack([(x @ w[i].T + b[i]).argmax(1) for i in range(heads)])  # (H, N)
    off = ~torch.eye(heads, dtype=torch.bool)
    disagree = (pred.unsqueeze(0) != pred.unsqueeze(1)).float().mean(-1)  # (H, H)
    return {
        "head_pairwise_cosine": float(cos[off].mean()),
        "head_pairwise_disagreement": float(disagree[off].mean()),
    }


def hardened_head(ctx: FitContext, backbone, cfg: HardenedLPConfig) -> LinearHead:
    from safeadapt.threads import one_thread

    train, val = cached_split_features(ctx, backbone)
    task = ctx.task
    with one_thread():  # small tensors: more threads only contend (safeadapt.threads)
        return fit_hardened_head(
            train,
            torch.from_numpy(task.train.labels),
            val,
            torch.from_numpy(task.val.labels),
            task.num_classes,
            cfg,
            ctx.seed,
        )
