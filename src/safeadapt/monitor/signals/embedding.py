"""Embedding drift: MMD^2 between the reference's and the window's features, with a permutation
p-value in two stages (``stats.embedding_drift``) -- in the adapted backbone's features where the
adaptation moved the backbone, in the pretrained backbone's for an LP export (one feature space)
and, when asked, for the others too."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import Tensor

from safeadapt.monitor.signals import stats
from safeadapt.monitor.signals.base import Signal, Test, Window, register_signal


@dataclass(frozen=True)
class EmbeddingResult:
    test: Test


class _Embedding(Signal):
    Result = EmbeddingResult

    def fit(self, reference, head) -> None:
        self._reference = self._features(reference)

    def _features(self, source) -> Tensor:
        raise NotImplementedError

    def settings(self) -> dict[str, Any]:
        return {"per_side": stats.MMD_PER_SIDE, "first_permutations": stats.FIRST_PERMUTATIONS}

    def measure(self, window: Window) -> EmbeddingResult:
        features = self._features(window)
        r = stats.embedding_drift(self._reference, features, window.level, window.seed)
        rows = min(len(features), stats.MMD_PER_SIDE)
        return EmbeddingResult(Test(r.statistic, r.p_value, r.p_value <= window.level, rows))


@register_signal("embedding_pretrained", order=10, alerts=True)
class PretrainedEmbedding(_Embedding):
    """An LP export's one feature space; where the adaptation moved the backbone, only when
    asked (``Options.pretrained_pass``): on the bench's five streams an FT export's adapted
    test alerted at the same windows as this one (docs/monitoring.md), at the cost of a second
    backbone pass."""

    label = "embedding drift, pretrained backbone (MMD)"

    @classmethod
    def plan(cls, reference, options) -> list[Signal]:
        return [cls()] if reference.same_backbone or options.pretrained_pass else []

    def _features(self, source) -> Tensor:
        return source.pretrained


@register_signal("embedding_adapted", order=20, alerts=True)
class AdaptedEmbedding(_Embedding):
    """Only where the adaptation changed the backbone (an LP export has one feature space)."""

    label = "embedding drift, adapted backbone (MMD)"

    @classmethod
    def applies(cls, reference) -> bool:
        return not reference.same_backbone

    def _features(self, source) -> Tensor:
        return source.adapted
