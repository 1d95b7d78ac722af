"""LP-stage hardening before fine-tuning (Trivedi, Koutra & Thiagarajan, ICLR 2023).

The linear head is trained on cached, standardised frozen features with one of:

- ``vat`` -- virtual adversarial training in feature space (Miyato et al. 2018):
  ``L = CE(h(x), y) + alpha * KL(p(x) || p(x + r_adv))``, ``r_adv = eps * g / ||g||``,
  ``g = grad_d KL(p(x) || p(x + xi * d))`` from a *random* unit direction ``d`` (one power
  iteration; the public code starts from the input instead -- a bug we do not copy).
  ``xi = 10, eps = 1``; ``alpha = 1`` (the paper's 0.1 is a no-op on an L2-regularised head).
- ``udp`` -- uncertainty-driven perturbations: ``delta <- clip(delta + step * sign(grad_delta
  H(softmax(h(x + delta)))), -eps, eps)`` for ``steps`` steps (increasing the head's predictive
  entropy), ``L = CE(h(x), y) + beta * CE(h(x + delta), y)``. The paper's ``beta = 0.01`` made
  the term 2 % of the loss here (a no-op); our default is ``beta = 1`` (term ~1.2x the CE,
  measured on VADER / MiniLM). Features are standardised, so ``eps`` is in units of each
  feature's standard deviation.
- ``soup`` -- a soup of ``n_heads`` heads, head ``i`` initialised on its own disjoint block of
  feature dimensions (zeros elsewhere), trained jointly on the mean CE, then averaged uniformly.
  By default (``soup_mask``) each head *stays* on its block plus a random ``soup_share`` of the
  other dimensions (a random-subspace ensemble): the public code only starts them on the block,
  and on a convex problem with fewer dimensions than examples the heads then converge to one
  head (measured: pairwise cosine 0.986), so the soup averaged copies of plain LP.

Each hardened head records what its knob did (``info["head_effect"]``): the hardening
term's share of the loss (``term_to_loss``), and for soups the heads' pairwise cosine and
prediction disagreement on validation.

Objective and optimiser: plain LP's (``CE + ||W||^2 / (2 C N)`` on standardised features, ``C``
the one plain LP picks on validation) plus the hardening term; VAT and UDP heads start at the LP
optimum. SGD with Nesterov momentum 0.9 on mini-batches, cosine schedule, the last epoch kept (the
paper: ~200 epochs; 60 here, converged on the built-in tasks). Constant feature dimensions get no
weight. Each record carries the head's standardised weight norm beside LP's and the share of
validation predictions that differ from LP's. Protocols: ``lp-vat``,
``lp-udp``, ``lp-soup`` (the hardened head alone, backbone frozen) and ``lp-vat-ft``,
``lp-udp-ft``, ``lp-soup-ft`` (fine-tuning from that head, as LP-FT).
"""

from __future__ import annotations

from dataclasses import dataclass

from safeadapt.config import build_config, require, setting
from safeadapt.linear import LinearHead
from safeadapt.model import Classifier
from safeadapt.protocols.base import FitContext, FitResult, Protocol, register_protocol
from safeadapt.protocols.hardening import HardenedLPConfig, hardened_head
from safeadapt.protocols.lp_ft import LPFTConfig, LPThenFT


def _set_method(cfg: HardenedLPConfig, method: str, protocol: str) -> None:
    from safeadapt.errors import InvalidConfig

    if cfg.method not in (None, method):
        raise InvalidConfig(
            f"protocol {protocol!r} hardens with {method!r}; got 'method: {cfg.method}'. "
            f"use protocol 'lp-{cfg.method}' (or drop 'method')."
        )
    object.__setattr__(cfg, "method", method)


class HardenedLP(Protocol):
    """A hardened linear head on the frozen backbone."""

    Config = HardenedLPConfig
    method = "vat"

    def __init__(self, config=None, **overrides) -> None:
        super().__init__(config, **overrides)
        _set_method(self.config, self.method, self.name)

    def fit(self, ctx: FitContext) -> FitResult:
        backbone = ctx.backbone_factory()
        head = hardened_head(ctx, backbone, self.config)
        model = Classifier.from_head(backbone, head.weight, head.bias).eval()
        info = {
            "method": self.method,
            "val_accuracy": head.val_accuracy,
            "head_effect": head.effect,
            "head_history": head.sweep,
            "trainable_parameters": head.weight.numel() + head.bias.numel(),
        }
        return FitResult(model, frozen_backbone=True, info=info)


@dataclass(frozen=True)
class HardenedLPFTConfig(LPFTConfig):
    """LP-FT from a hardened LP head (the training settings are LP-FT's)."""

    head: HardenedLPConfig = setting(
        doc="the hardened head's training and strengths (safeadapt list lp-vat)",
        factory=HardenedLPConfig,
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.head, HardenedLPConfig):
            object.__setattr__(
                self, "head", build_config(HardenedLPConfig, self.head, "hardened LP-FT 'head'")
            )
        require(
            self.head_init == "lp",
            "a hardened LP-FT starts from its hardened LP head: 'head_init' must stay 'lp'.",
        )


class HardenedLPFT(LPThenFT):
    """Fine-tuning from a hardened LP head (otherwise LP-FT)."""

    Config = HardenedLPFTConfig
    method = "vat"

    def __init__(self, config=None, **overrides) -> None:
        super().__init__(config, **overrides)
        _set_method(self.config.head, self.method, self.name)

    def initial_head(self, ctx: FitContext, backbone) -> LinearHead:
        return hardened_head(ctx, backbone, self.config.head)


@register_protocol("lp-vat")
class LPVAT(HardenedLP):
    """A linear head trained with virtual adversarial training, backbone frozen."""

    method = "vat"


@register_protocol("lp-vat-ft")
class LPVATFT(HardenedLPFT):
    """Fine-tuning from a VAT-hardened head (otherwise LP-FT)."""

    method = "vat"


@register_protocol("lp-udp")
class LPUDP(HardenedLP):
    """A linear head trained with uncertainty-driven perturbations, backbone frozen."""

    method = "udp"


@register_protocol("lp-udp-ft")
class LPUDPFT(HardenedLPFT):
    """Fine-tuning from a UDP-hardened head (otherwise LP-FT)."""

    method = "udp"


@register_protocol("lp-soup")
class LPSoup(HardenedLP):
    """A uniform soup of linear heads on random feature subspaces, backbone frozen."""

    method = "soup"


@register_protocol("lp-soup-ft")
class LPSoupFT(HardenedLPFT):
    """Fine-tuning from a soup of heads (otherwise LP-FT)."""

    method = "soup"
