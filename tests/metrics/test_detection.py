import numpy as np
import pytest
import torch

from safeadapt.metrics.detection import auroc, energy_score, fpr_at_tpr, msp_score


def test_perfect_separation():
    assert auroc(torch.tensor([0.9, 0.8, 0.95]), torch.tensor([0.1, 0.2])) == 1.0
    assert fpr_at_tpr(torch.tensor([0.9, 0.8, 0.95]), torch.tensor([0.1, 0.2])) == 0.0


def test_identical_distributions_are_chance():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=5000), rng.normal(size=5000)
    assert auroc(a, b) == pytest.approx(0.5, abs=0.02)
    assert fpr_at_tpr(a, b) == pytest.approx(0.95, abs=0.02)


def test_hand_computed_auroc_matches_pair_counting():
    a, b = np.array([0.3, 0.6, 0.9]), np.array([0.2, 0.5, 0.7, 0.95])
    pairs = np.mean([x > y for x in a for y in b])
    assert auroc(a, b) == pytest.approx(pairs)


def test_scores():
    logits = torch.tensor([[10.0, 0.0], [0.0, 0.0]])
    assert msp_score(logits)[0] > msp_score(logits)[1]
    assert energy_score(logits)[1].item() == pytest.approx(np.log(2))
