"""Common corruptions of raw inputs, at graded severities (pure, seeded functions).

Images (uint8 ``(N, H, W[, C])``), five severities as in Hendrycks & Dietterich (ICLR 2019):
``gaussian_noise``, ``gaussian_blur``, ``contrast`` and ``jpeg``. Their severity parameters are
the published ones: CIFAR-10-C values for small images (shorter side <= 64 px, e.g. MNIST) and
ImageNet-C values for larger ones.

Texts, three severities (the fraction of words touched: 5%, 10%, 20%):
``typo`` (one character edit per chosen word: delete, insert, substitute or swap neighbours),
``word_drop`` (chosen words removed, at least one word kept) and ``word_swap`` (chosen words
swapped with their right neighbour).

``corruption_summary`` turns per-corruption accuracies into the mean corrupted accuracy and the
relative drop from clean accuracy.
"""

from __future__ import annotations

import io
import string
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from safeadapt._registry import Registry
from safeadapt.errors import InvalidConfig

ImageCorruption = Callable[[np.ndarray, int, np.random.Generator], np.ndarray]
TextCorruption = Callable[[str, int, np.random.Generator], str]

IMAGE_CORRUPTIONS: Registry[ImageCorruption] = Registry("image corruption")
TEXT_CORRUPTIONS: Registry[TextCorruption] = Registry("text corruption")
SEVERITIES = {"image": (1, 2, 3, 4, 5), "text": (1, 2, 3)}

# (CIFAR-10-C, ImageNet-C) parameters per severity 1..5
_NOISE_SIGMA = ((0.04, 0.06, 0.08, 0.09, 0.10), (0.08, 0.12, 0.18, 0.26, 0.38))
_BLUR_SIGMA = ((0.4, 0.6, 0.7, 0.8, 1.0), (1.0, 2.0, 3.0, 4.0, 6.0))
_CONTRAST = ((0.75, 0.5, 0.4, 0.3, 0.15), (0.4, 0.3, 0.2, 0.1, 0.05))
_JPEG_QUALITY = ((80, 65, 58, 50, 40), (25, 18, 15, 10, 7))
TEXT_FRACTION = (0.05, 0.10, 0.20)


def _param(table: tuple[tuple, tuple], image: np.ndarray, severity: int):
    small = min(image.shape[:2]) <= 64
    return table[0 if small else 1][severity - 1]


def _to_float(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float64) / 255.0


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return (np.clip(x, 0.0, 1.0) * 255.0).round().astype(np.uint8)


@IMAGE_CORRUPTIONS.register("gaussian_noise")
def gaussian_noise(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    x = _to_float(image)
    return _to_uint8(x + rng.normal(size=x.shape) * _param(_NOISE_SIGMA, image, severity))


@IMAGE_CORRUPTIONS.register("gaussian_blur")
def gaussian_blur(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    sigma = _param(_BLUR_SIGMA, image, severity)
    sigmas = (sigma, sigma, 0) if image.ndim == 3 else (sigma, sigma)  # never across channels
    return _to_uint8(gaussian_filter(_to_float(image), sigma=sigmas))


@IMAGE_CORRUPTIONS.register("contrast")
def contrast(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    x = _to_float(image)
    mean = x.mean(axis=(0, 1), keepdims=True)
    return _to_uint8((x - mean) * _param(_CONTRAST, image, severity) + mean)


@IMAGE_CORRUPTIONS.register("jpeg")
def jpeg(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=_param(_JPEG_QUALITY, image, severity))
    buf.seek(0)
    return np.asarray(Image.open(buf)).astype(np.uint8).reshape(image.shape)


def _chosen(n_words: int, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of the words to corrupt: ``ceil(fraction * n)`` of them, at least one."""
    k = max(1, int(np.ceil(TEXT_FRACTION[severity - 1] * n_words)))
    return np.sort(rng.choice(n_words, size=min(k, n_words), replace=False))


def _typo(word: str, rng: np.random.Generator) -> str:
    letters = string.ascii_lowercase
    if len(word) < 2:
        return word + letters[rng.integers(26)]
    i = int(rng.integers(len(word)))
    op = int(rng.integers(4))
    if op == 0:  # delete
        return word[:i] + word[i + 1 :]
    if op == 1:  # insert
        return word[:i] + letters[rng.integers(26)] + word[i:]
    if op == 2:  # substitute (with a different letter)
        new = letters[(letters.find(word[i].lower()) + 1 + rng.integers(25)) % 26]
        return word[:i] + new + word[i + 1 :]
    j = min(i, len(word) - 2)  # swap neighbours
    return word[:j] + word[j + 1] + word[j] + word[j + 2 :]


@TEXT_CORRUPTIONS.register("typo")
def typo(text: str, severity: int, rng: np.random.Generator) -> str:
    words = text.split()
    if not words:
        return text
    for i in _chosen(len(words), severity, rng):
        words[i] = _typo(words[i], rng)
    return " ".join(words)


@TEXT_CORRUPTIONS.register("word_drop")
def word_drop(text: str, severity: int, rng: np.random.Generator) -> str:
    words = text.split()
    if len(words) < 2:
        return text
    drop = set(_chosen(len(words), severity, rng).tolist())
    kept = [w for i, w in enumerate(words) if i not in drop]
    return " ".join(kept or words[:1])


@TEXT_CORRUPTIONS.register("word_swap")
def word_swap(text: str, severity: int, rng: np.random.Generator) -> str:
    words = text.split()
    if len(words) < 2:
        return text
    for i in _chosen(len(words) - 1, severity, rng):
        words[i], words[i + 1] = words[i + 1], words[i]
    return " ".join(words)


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
