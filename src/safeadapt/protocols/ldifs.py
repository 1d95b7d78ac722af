"""LDIFS (Mukhoti et al. 2023): LP-FT with a feature-space penalty toward the original backbone.

``L = CE + lambda * mean_taps mean_dims (f_l/||f_l|| - f0_l/||f0_l||)^2`` (see
``safeadapt.protocols.regularizers``), head initialised from an LP head, as in the paper
(AdamW, cosine with warmup, gradient clipping 1.0, lambda = 10). Any FT protocol gets the same
penalty with ``regularizer: ldifs``.
"""

from __future__ import annotations

from dataclasses import dataclass

from safeadapt.protocols.base import register_protocol
from safeadapt.protocols.lp_ft import LPFTConfig, LPThenFT


@dataclass(frozen=True)
class LDIFSConfig(LPFTConfig):
    regularizer: str | None = "ldifs"
    reg_weight: float | None = 10.0


@register_protocol("ldifs")
class LDIFSProtocol(LPThenFT):
    """LP-FT + LDIFS feature-distance penalty (features of the train split from the cache)."""

    Config = LDIFSConfig
