"""Automatic sentiment labels from VADER's lexicon (Hutto & Gilbert 2014, ``vaderSentiment``).

The label-noise setting of Vargas et al. (2023): Sentiment140's training tweets were labelled by a
heuristic (emoticons) and only tweets the heuristic fired on were kept, while its test tweets were
labelled by people. ``vader-autolabel`` rebuilds that with the VADER corpus: a rule-based scorer
labels the training texts it is confident about; people label the test texts.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from safeadapt.errors import AssetMissing


def lexicon_compound(texts: Sequence[str]) -> np.ndarray:
    """VADER's compound polarity in [-1, 1] for each text (rule-based lexicon, no model)."""
    try:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
    except ImportError as err:  # pragma: no cover - a dependency of safeadapt
        raise AssetMissing(
            "The automatic labeller needs the 'vaderSentiment' package: pip install vaderSentiment"
        ) from err
    analyzer = SentimentIntensityAnalyzer()
    return np.asarray([analyzer.polarity_scores(t)["compound"] for t in texts], dtype=np.float64)
