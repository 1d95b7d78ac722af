"""LDIFS (Mukhoti et al. 2023): LP-FT with a feature-space penalty toward the original backbone.

``L = CE + lambda * mean_taps mean_dims (f_l/||f_l|| - f0_l/||f0_l||)^2`` (see
``safeadapt.protocols.regularizers``), head initialised from an LP head, as in the paper
(AdamW, cosine with warmup, gradient clipping 1.0, lambda = 10). Any FT protocol gets the same
penalty with ``regularizer: ldifs``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from safeadapt.config import choice_setting
from safeadapt.protocols.base import register_protocol
from safeadapt.protocols.lp_ft import LPFTConfig, LPThenFT
from safeadapt.protocols.regularizers import LDIFS_WEIGHT, REGULARIZER_SETTINGS, LDIFSSettings


@dataclass(frozen=True)
class LDIFSConfig(LPFTConfig):
    regularizer: Any = choice_setting(
        LDIFSSettings(weight=LDIFS_WEIGHT), "", lambda: REGULARIZER_SETTINGS, True
    )


@register_protocol("ldifs")
class LDIFSProtocol(LPThenFT):
    """LP-FT + LDIFS feature-distance penalty (features of the train split from the cache)."""

    Config = LDIFSConfig
