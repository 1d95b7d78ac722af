"""Corruption robustness as a number: per-corruption accuracies (the inputs are perturbed by
``safeadapt.perturb``) turned into the mean corrupted accuracy and its relative drop from clean
accuracy."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from safeadapt.errors import InvalidConfig


def corruption_summary(
    clean_accuracy: float, accuracy: Mapping[str, Mapping[int, float]]
) -> dict[str, float]:
    """Mean corrupted accuracy over every kind and severity, and its drop relative to clean.

    ``accuracy`` is ``{kind: {severity: accuracy}}``. ``relative_drop = (clean - mean) / clean``.
    """
    values = [a for per_kind in accuracy.values() for a in per_kind.values()]
    if not values:
        raise InvalidConfig("corruption_summary needs at least one corrupted accuracy.")
    mean = float(np.mean(values))
    per_kind = {k: float(np.mean(list(v.values()))) for k, v in accuracy.items()}
    drop = (clean_accuracy - mean) / clean_accuracy if clean_accuracy > 0 else float("nan")
    return {
        "clean_accuracy": float(clean_accuracy),
        "mean_accuracy": mean,
        "relative_drop": float(drop),
        **{f"mean_{k}": v for k, v in per_kind.items()},
    }
