"""Text corruptions, three severities (the fraction of words touched: 5%, 10%, 20%):
``typo`` (one character edit per chosen word: delete, insert, substitute or swap neighbours),
``keyboard`` (a letter replaced by a QWERTY neighbour), ``ocr`` (OCR confusions such as
l/1, O/0, rn/m, e/c), ``case`` (the word's case changed), ``punctuation`` (a mark inserted after
the word, or the word's marks removed), ``synonym`` (a common word replaced from a small built-in
synonym table; words without an entry are left alone), ``word_drop`` (chosen words removed, at
least one kept) and ``word_swap`` (chosen words swapped with their right neighbour).
"""

from __future__ import annotations

import string

import numpy as np

from safeadapt.perturb.base import TEXT_CORRUPTIONS

TEXT_FRACTION = (0.05, 0.10, 0.20)


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
