"""Feature distortion (Kumar et al. 2022): how far adaptation moved the backbone's features.

For inputs x, with f0 the pretrained and f the adapted backbone:
mean L2 = mean_i ||f(x_i) - f0(x_i)||_2 ; cosine distance = mean_i 1 - cos(f(x_i), f0(x_i)).
Kumar et al. report that FT changes ID features much more than OOD ones; the OOD/ID ratio says it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor

from safeadapt.results._json import absent


@dataclass(frozen=True)
class FeatureChange:
    """How far one split's features moved from the pretrained backbone's: mean L2, mean
    cosine distance and mean L2 relative to the original norm; for an OOD split, its mean L2
    over ID test's (``None`` when nothing moved on ID, as for LP)."""

    l2: float
    cosine: float
    relative_l2: float
    l2_ratio_to_id: float | None = absent()


def per_example_l2(original: Tensor, adapted: Tensor) -> Tensor:
    """``||f(x_i) - f0(x_i)||_2`` per example, ``(N,)`` float64 (the mean is ``l2``)."""
    return (adapted.double() - original.double()).norm(dim=1)


def feature_change(original: Tensor, adapted: Tensor) -> FeatureChange:
    """Mean L2 and cosine distance between paired features ``(N, D)``; 0 when nothing moved."""
    if original.shape != adapted.shape or original.ndim != 2:
        raise ValueError(
            f"expected two (N, D) arrays of one shape; got {tuple(original.shape)} and {tuple(adapted.shape)}"
        )
    a, b = original.double(), adapted.double()
    l2 = per_example_l2(a, b).mean().item()
    # 1 - cos(a, b) = ||a/|a| - b/|b| ||^2 / 2, written so that identical inputs give exactly 0
    cos = (
        ((F.normalize(a, dim=1, eps=1e-12) - F.normalize(b, dim=1, eps=1e-12)).pow(2).sum(1) / 2)
        .mean()
        .item()
    )
    rel = ((b - a).norm(dim=1) / a.norm(dim=1).clamp_min(1e-12)).mean().item()
    return FeatureChange(l2, cos, rel)


def distortion_report(
    original: dict[str, Tensor], adapted: dict[str, Tensor], id_split: str = "test"
) -> dict[str, FeatureChange]:
    """Per split feature change, plus for each other split its OOD/ID ratio of mean L2."""
    out = {name: feature_change(original[name], adapted[name]) for name in original}
    id_l2 = out[id_split].l2
    return {
        name: c if name == id_split or not id_l2 > 0
        else dataclasses.replace(c, l2_ratio_to_id=c.l2 / id_l2)
        for name, c in out.items()
    }  # fmt: skip
