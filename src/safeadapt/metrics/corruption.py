"""Common corruptions of raw inputs, at graded severities (pure, seeded functions).

Images (uint8 ``(N, H, W[, C])``), five severities, after Hendrycks & Dietterich (ICLR 2019):
every ImageNet-C type that needs no extra asset -- ``gaussian_noise``, ``shot_noise``,
``impulse_noise``, ``gaussian_blur``, ``defocus_blur``, ``motion_blur``, ``zoom_blur``,
``brightness``, ``contrast``, ``saturate``, ``pixelate``, ``jpeg``, ``elastic`` (no snow, frost,
fog, spatter or glass blur). Severity parameters are the published ones -- CIFAR-10-C values for
small images (shorter side <= 64 px, e.g. MNIST), ImageNet-C values for larger ones -- except
where said: ``motion_blur`` is a one-sided Gaussian line kernel at a random angle (ImageNet-C
calls ImageMagick's), ``pixelate`` downsamples with an antialiased bilinear filter and
upsamples to blocks (ImageNet-C's box round trip leaves a 28-px image unchanged at 0.95), ``elastic`` is a smooth random displacement field whose largest shift is
1-6 % of the image side (our parameterisation, not ImageNet-C's affine + elastic mix).
``saturate`` needs colour: on greyscale images it changes nothing, and the corruption family
leaves it out. This is a generated set, not ImageNet-C's published images or its mCE protocol.

Texts, three severities (the fraction of words touched: 5%, 10%, 20%):
``typo`` (one character edit per chosen word: delete, insert, substitute or swap neighbours),
``keyboard`` (a letter replaced by a QWERTY neighbour), ``ocr`` (OCR confusions such as
l/1, O/0, rn/m, e/c), ``case`` (the word's case changed), ``punctuation`` (a mark inserted after
the word, or the word's marks removed), ``synonym`` (a common word replaced from a small built-in
synonym table; words without an entry are left alone), ``word_drop`` (chosen words removed, at
least one kept) and ``word_swap`` (chosen words swapped with their right neighbour).

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
_SHOT = ((500, 250, 100, 75, 50), (60, 25, 12, 5, 3))
_IMPULSE = ((0.01, 0.02, 0.03, 0.05, 0.07), (0.03, 0.06, 0.09, 0.17, 0.27))
_DEFOCUS = (
    ((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)),
    ((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5)),
)
_MOTION = (
    ((10, 1), (10, 1.5), (10, 2), (10, 2.5), (12, 3)),
    ((10, 3), (15, 5), (15, 8), (15, 12), (20, 15)),
)
_ZOOM = (
    tuple(np.arange(1, end, 0.01) for end in (1.06, 1.11, 1.16, 1.21, 1.26)),
    tuple(
        np.arange(1, end, step)
        for end, step in ((1.11, 0.01), (1.16, 0.01), (1.21, 0.02), (1.26, 0.02), (1.31, 0.03))
    ),
)
_BRIGHTNESS = ((0.05, 0.1, 0.15, 0.2, 0.3), (0.1, 0.2, 0.3, 0.4, 0.5))
_SATURATE = (
    ((0.3, 0), (0.1, 0), (1.5, 0), (2, 0.1), (2.5, 0.2)),
    ((0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (20, 0.2)),
)
_PIXELATE = ((0.95, 0.9, 0.85, 0.75, 0.65), (0.6, 0.5, 0.4, 0.3, 0.25))
_ELASTIC = (0.01, 0.02, 0.03, 0.045, 0.06)  # largest shift / image side (ours)
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


def _per_channel(image: np.ndarray, fn) -> np.ndarray:
    """Apply ``fn`` to each (H, W) channel of a float image."""
    if image.ndim == 2:
        return fn(image)
    return np.stack([fn(image[..., c]) for c in range(image.shape[-1])], axis=-1)


@IMAGE_CORRUPTIONS.register("shot_noise")
def shot_noise(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    c = _param(_SHOT, image, severity)
    return _to_uint8(rng.poisson(_to_float(image) * c) / c)


@IMAGE_CORRUPTIONS.register("impulse_noise")
def impulse_noise(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Salt and pepper on a share ``amount`` of the values (half each)."""
    x = _to_float(image)
    hit = rng.random(x.shape) < _param(_IMPULSE, image, severity)
    salt = rng.random(x.shape) < 0.5
    return _to_uint8(np.where(hit, salt.astype(float), x))


def _disk(radius: float, alias_blur: float) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    half = max(8, int(np.ceil(radius)))
    grid = np.arange(-half, half + 1)
    xx, yy = np.meshgrid(grid, grid)
    kernel = ((xx**2 + yy**2) <= radius**2).astype(np.float64)
    if kernel.sum() == 0:
        kernel[half, half] = 1.0
    kernel /= kernel.sum()
    return gaussian_filter(kernel, alias_blur)


@IMAGE_CORRUPTIONS.register("defocus_blur")
def defocus_blur(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    from scipy.ndimage import convolve

    radius, alias = _param(_DEFOCUS, image, severity)
    kernel = _disk(radius, alias)
    return _to_uint8(
        _per_channel(_to_float(image), lambda ch: convolve(ch, kernel, mode="reflect"))
    )


@IMAGE_CORRUPTIONS.register("motion_blur")
def motion_blur(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """A one-sided line kernel of Gaussian weights (``sigma``) up to ``radius`` pixels, at a
    random angle in [-45, 45] degrees (an approximation of ImageMagick's motion blur)."""
    from scipy.ndimage import convolve

    radius, sigma = _param(_MOTION, image, severity)
    angle = np.deg2rad(rng.uniform(-45, 45))
    size = 2 * int(radius) + 1
    kernel = np.zeros((size, size))
    for t in np.linspace(0, radius, 4 * int(radius) + 1):
        r = int(round(radius + t * np.sin(angle)))
        c = int(round(radius + t * np.cos(angle)))
        kernel[r, c] += np.exp(-(t**2) / (2 * sigma**2))
    kernel /= kernel.sum()
    return _to_uint8(
        _per_channel(_to_float(image), lambda ch: convolve(ch, kernel, mode="reflect"))
    )


def _clipped_zoom(channel: np.ndarray, factor: float) -> np.ndarray:
    """Zoom the centre of a (H, W) channel by ``factor`` and crop back to (H, W)."""
    from scipy.ndimage import zoom

    h, w = channel.shape
    ch, cw = int(np.ceil(h / factor)), int(np.ceil(w / factor))
    top, left = (h - ch) // 2, (w - cw) // 2
    out = zoom(channel[top : top + ch, left : left + cw], factor, order=1)
    ot, ol = (out.shape[0] - h) // 2, (out.shape[1] - w) // 2
    return out[ot : ot + h, ol : ol + w]


@IMAGE_CORRUPTIONS.register("zoom_blur")
def zoom_blur(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    x = _to_float(image)
    factors = _param(_ZOOM, image, severity)
    out = x.copy()
    for f in factors:
        out += _per_channel(x, lambda ch, f=f: _clipped_zoom(ch, float(f)))
    return _to_uint8(out / (len(factors) + 1))


def _hsv(x: np.ndarray):
    from matplotlib.colors import hsv_to_rgb, rgb_to_hsv

    return rgb_to_hsv, hsv_to_rgb


@IMAGE_CORRUPTIONS.register("brightness")
def brightness(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """The HSV value channel raised by ``c`` (greyscale: the intensity)."""
    x, c = _to_float(image), _param(_BRIGHTNESS, image, severity)
    if x.ndim == 2 or x.shape[-1] == 1:
        return _to_uint8(x + c)
    to_hsv, to_rgb = _hsv(x)
    hsv = to_hsv(x[..., :3])
    hsv[..., 2] = np.clip(hsv[..., 2] + c, 0, 1)
    return _to_uint8(np.concatenate([to_rgb(hsv), x[..., 3:]], axis=-1))


@IMAGE_CORRUPTIONS.register("saturate")
def saturate(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """The HSV saturation scaled and shifted; greyscale images have none (returned unchanged)."""
    if image.ndim == 2 or image.shape[-1] < 3:
        return image.copy()
    x = _to_float(image)
    scale, shift = _param(_SATURATE, image, severity)
    to_hsv, to_rgb = _hsv(x)
    hsv = to_hsv(x[..., :3])
    hsv[..., 1] = np.clip(hsv[..., 1] * scale + shift, 0, 1)
    return _to_uint8(np.concatenate([to_rgb(hsv), x[..., 3:]], axis=-1))


@IMAGE_CORRUPTIONS.register("pixelate")
def pixelate(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    from PIL import Image

    h, w = image.shape[:2]
    factor = _param(_PIXELATE, image, severity)
    small = (max(1, int(w * factor)), max(1, int(h * factor)))
    pil = Image.fromarray(image.squeeze(-1) if image.ndim == 3 and image.shape[-1] == 1 else image)
    # antialiased down (PIL's BOX round trip is lossless at factors near 1), blocky back up
    out = pil.resize(small, Image.BILINEAR).resize((w, h), Image.NEAREST)
    return np.asarray(out).astype(np.uint8).reshape(image.shape)


@IMAGE_CORRUPTIONS.register("elastic")
def elastic(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Resample along a smooth random displacement field (Simard et al. 2003): Gaussian-filtered
    uniform noise (sigma = 1/10 of the side), scaled so its largest shift is a share of the
    side."""
    from scipy.ndimage import gaussian_filter, map_coordinates

    x = _to_float(image)
    h, w = x.shape[:2]
    side = min(h, w)
    fields = []
    for _ in range(2):
        f = gaussian_filter(rng.uniform(-1, 1, (h, w)), side / 10)
        fields.append(f / (np.abs(f).max() + 1e-12) * _ELASTIC[severity - 1] * side)
    rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    coords = [rows + fields[0], cols + fields[1]]
    return _to_uint8(
        _per_channel(x, lambda ch: map_coordinates(ch, coords, order=1, mode="reflect"))
    )


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


def _edit_words(text: str, severity: int, rng: np.random.Generator, edit) -> str:
    words = text.split()
    if not words:
        return text
    for i in _chosen(len(words), severity, rng):
        words[i] = edit(words[i], rng)
    return " ".join(words)


@TEXT_CORRUPTIONS.register("typo")
def typo(text: str, severity: int, rng: np.random.Generator) -> str:
    return _edit_words(text, severity, rng, _typo)


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


_QWERTY = ("qwertyuiop", "asdfghjkl", "zxcvbnm")


def _neighbours(letter: str) -> str:
    for r, row in enumerate(_QWERTY):
        c = row.find(letter)
        if c < 0:
            continue
        near = [row[j] for j in (c - 1, c + 1) if 0 <= j < len(row)]
        for rr in (r - 1, r + 1):
            if 0 <= rr < len(_QWERTY):
                near += [_QWERTY[rr][j] for j in (c - 1, c, c + 1) if 0 <= j < len(_QWERTY[rr])]
        return "".join(near)
    return ""


@TEXT_CORRUPTIONS.register("keyboard")
def keyboard(text: str, severity: int, rng: np.random.Generator) -> str:
    """One letter of each chosen word replaced by a QWERTY neighbour (case kept)."""

    def edit(word: str, rng: np.random.Generator) -> str:
        spots = [i for i, ch in enumerate(word) if _neighbours(ch.lower())]
        if not spots:
            return word
        i = spots[int(rng.integers(len(spots)))]
        near = _neighbours(word[i].lower())
        new = near[int(rng.integers(len(near)))]
        return word[:i] + (new.upper() if word[i].isupper() else new) + word[i + 1 :]

    return _edit_words(text, severity, rng, edit)


_OCR = (
    ("rn", "m"),
    ("m", "rn"),
    ("l", "1"),
    ("I", "l"),
    ("O", "0"),
    ("o", "0"),
    ("e", "c"),
    ("c", "e"),
    ("a", "o"),
    ("h", "b"),
    ("S", "5"),
    ("s", "5"),
    ("B", "8"),
    ("g", "9"),
    ("i", "1"),
    ("t", "f"),
    ("cl", "d"),
    ("vv", "w"),
    ("u", "v"),
    ("n", "h"),
)


@TEXT_CORRUPTIONS.register("ocr")
def ocr(text: str, severity: int, rng: np.random.Generator) -> str:
    """One OCR confusion (l/1, O/0, rn/m, e/c, ...) in each chosen word that has one."""

    def edit(word: str, rng: np.random.Generator) -> str:
        options = [(i, a, b) for a, b in _OCR for i in range(len(word)) if word.startswith(a, i)]
        if not options:
            return word
        i, a, b = options[int(rng.integers(len(options)))]
        return word[:i] + b + word[i + len(a) :]

    return _edit_words(text, severity, rng, edit)


@TEXT_CORRUPTIONS.register("case")
def case(text: str, severity: int, rng: np.random.Generator) -> str:
    """Each chosen word upper-cased, lower-cased or title-cased (whichever changes it)."""

    def edit(word: str, rng: np.random.Generator) -> str:
        options = [w for w in (word.upper(), word.lower(), word.title()) if w != word]
        return options[int(rng.integers(len(options)))] if options else word

    return _edit_words(text, severity, rng, edit)


_MARKS = ",.!?;:"


@TEXT_CORRUPTIONS.register("punctuation")
def punctuation(text: str, severity: int, rng: np.random.Generator) -> str:
    """Each chosen word loses its punctuation marks, or gains one after it if it has none."""

    def edit(word: str, rng: np.random.Generator) -> str:
        bare = "".join(ch for ch in word if ch not in string.punctuation)
        if bare != word and bare:
            return bare
        return word + _MARKS[int(rng.integers(len(_MARKS)))]

    return _edit_words(text, severity, rng, edit)


# a small, general synonym table (lower case); words without an entry are not replaced
_SYNONYMS = {
    "good": ("fine", "nice", "decent"),
    "great": ("excellent", "superb"),
    "bad": ("poor", "awful"),
    "movie": ("film",),
    "film": ("movie",),
    "very": ("really", "quite"),
    "really": ("very",),
    "big": ("large", "huge"),
    "small": ("little", "tiny"),
    "fast": ("quick", "rapid"),
    "happy": ("glad", "pleased"),
    "sad": ("unhappy", "gloomy"),
    "buy": ("purchase",),
    "start": ("begin",),
    "end": ("finish",),
    "make": ("create",),
    "show": ("display",),
    "help": ("assist",),
    "like": ("enjoy",),
    "love": ("adore",),
    "hate": ("dislike",),
    "think": ("believe",),
    "get": ("obtain",),
    "use": ("employ",),
    "try": ("attempt",),
    "need": ("require",),
    "old": ("aged",),
    "new": ("fresh",),
    "easy": ("simple",),
    "hard": ("difficult",),
    "funny": ("amusing",),
    "boring": ("dull", "tedious"),
    "beautiful": ("lovely", "pretty"),
    "terrible": ("dreadful", "horrible"),
    "best": ("finest",),
    "worst": ("poorest",),
    "story": ("tale",),
    "people": ("folks",),
    "money": ("cash",),
    "car": ("automobile",),
    "job": ("work",),
    "many": ("numerous",),
    "little": ("small",),
    "maybe": ("perhaps",),
    "almost": ("nearly",),
    "also": ("too",),
    "said": ("stated",),
    "smart": ("clever",),
    "strange": ("odd", "weird"),
    "scary": ("frightening",),
    "awesome": ("amazing",),
    "amazing": ("awesome",),
    "product": ("item",),
    "quickly": ("rapidly",),
}


@TEXT_CORRUPTIONS.register("synonym")
def synonym(text: str, severity: int, rng: np.random.Generator) -> str:
    """Chosen words replaced by a synonym from the built-in table (case of the first letter
    kept); a word without an entry stays."""

    def edit(word: str, rng: np.random.Generator) -> str:
        core = word.strip(string.punctuation)
        options = _SYNONYMS.get(core.lower())
        if not core or not options:
            return word
        new = options[int(rng.integers(len(options)))]
        if core[0].isupper():
            new = new.capitalize()
        start = word.find(core)
        return word[:start] + new + word[start + len(core) :]

    return _edit_words(text, severity, rng, edit)


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
