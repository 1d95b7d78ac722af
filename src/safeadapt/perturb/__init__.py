"""Input perturbations: common corruptions of raw inputs at graded severities (pure, seeded
functions), for images (``perturb.images``: the ImageNet-C types that need no extra asset) and
texts (``perturb.text``: typos, keyboard and OCR errors, case, punctuation, synonyms, word drop
and swap). The ``corruption`` safety family scores a model on them; ``metrics.corruption``
summarises the accuracies."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from safeadapt._registry import Registry
from safeadapt.errors import InvalidConfig
from safeadapt.perturb import images, text  # noqa: F401  (each registers its corruptions)
from safeadapt.perturb.base import IMAGE_CORRUPTIONS, SEVERITIES, TEXT_CORRUPTIONS


def corruptions_for(modality: str) -> Registry:
    if modality == "image":
        return IMAGE_CORRUPTIONS
    if modality == "text":
        return TEXT_CORRUPTIONS
    raise InvalidConfig(f"corruptions exist for 'image' and 'text'; got modality {modality!r}.")


def corrupt(
    inputs: Sequence[str] | np.ndarray, modality: str, kind: str, severity: int, seed: int = 0
) -> list[str] | np.ndarray:
    """Apply corruption ``kind`` at ``severity`` to every input; seeded, inputs left untouched."""
    fn = corruptions_for(modality).get(kind)
    if severity not in SEVERITIES[modality]:
        raise InvalidConfig(
            f"{modality} corruption severity must be one of {SEVERITIES[modality]}; got {severity!r}."
        )
    rng = np.random.default_rng([seed, severity, sum(map(ord, kind))])
    if modality == "image":
        return np.stack([fn(np.asarray(x), severity, rng) for x in inputs])
    return [fn(t, severity, rng) for t in inputs]


__all__ = ["IMAGE_CORRUPTIONS", "SEVERITIES", "TEXT_CORRUPTIONS", "corrupt", "corruptions_for"]
