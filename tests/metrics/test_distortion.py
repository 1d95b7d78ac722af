import pytest
import torch

from safeadapt.metrics.distortion import FeatureChange, distortion_report, feature_change


def test_no_change_is_exactly_zero():
    x = torch.randn(10, 4)
    assert feature_change(x, x.clone()) == FeatureChange(0.0, 0.0, 0.0)


def test_hand_computed_change():
    a = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    b = torch.tensor([[0.0, 1.0], [0.0, 4.0]])
    out = feature_change(a, b)
    assert out.l2 == pytest.approx((2**0.5 + 2) / 2)
    assert out.cosine == pytest.approx(0.5)  # 1 - cos 90deg = 1, 1 - cos 0 = 0


def test_ratio_to_id():
    a = torch.zeros(3, 2)
    rep = distortion_report({"test": a, "ood:x": a}, {"test": a + 1, "ood:x": a + 0.5})
    assert rep["ood:x"].l2_ratio_to_id == pytest.approx(0.5)


def test_shape_mismatch():
    with pytest.raises(ValueError):
        feature_change(torch.zeros(3, 2), torch.zeros(3, 3))
