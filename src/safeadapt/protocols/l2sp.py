"""L2-SP (Li, Grandvalet & Davoine 2018): LP-FT with ``alpha * ||w - w0||^2`` on backbone weights.

Weight decay is off by default (the penalty replaces it on the backbone; the paper keeps plain L2
on the new head, which our head-only decay would need a separate group for -- the head here starts
from the LP solution, so it is left undecayed). Any FT protocol gets the penalty with
``regularizer: l2-sp``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from safeadapt.config import choice_setting, nested_setting
from safeadapt.protocols.base import register_protocol
from safeadapt.protocols.lp_ft import LPFTConfig, LPThenFT
from safeadapt.protocols.regularizers import REGULARIZER_SETTINGS, L2SPSettings
from safeadapt.protocols.train_config import Optimizer


@dataclass(frozen=True)
class L2SPConfig(LPFTConfig):
    regularizer: Any = choice_setting(
        L2SPSettings(weight=0.5), "", lambda: REGULARIZER_SETTINGS, True
    )
    optimizer: Optimizer = nested_setting(Optimizer, default=Optimizer(weight_decay=0.0))


@register_protocol("l2-sp")
class L2SPProtocol(LPThenFT):
    """LP-FT + L2-SP penalty toward the pretrained backbone weights."""

    Config = L2SPConfig
