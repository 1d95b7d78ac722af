"""Agreement-on-the-line (ALine-D): the algebra on an exact line, the estimate's interval and
the line's fit on a real export with an ensemble."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from safeadapt.errors import InvalidConfig
from safeadapt.monitor.signals import stats


def test_aline_d_recovers_every_models_accuracy_on_an_exact_line():
    """Six models whose window accuracies and agreements lie exactly on one probit line (slope
    0.8, bias -0.5) of their reference ones: ALine-D returns the window accuracies to 1e-9, the
    line's slope, bias and R^2 = 1 -- the defining property (Baek et al. 2022, eq. for ALine-D)."""
    rng = np.random.default_rng(0)
    models = 6
    ref_acc = rng.uniform(0.7, 0.95, models)
    ref_agree = rng.uniform(0.75, 0.98, models * (models - 1) // 2)
    slope, bias = 0.8, -0.5
    window_acc = norm.cdf(slope * norm.ppf(ref_acc) + bias)
    window_agree = norm.cdf(slope * norm.ppf(ref_agree) + bias)
    line = stats.aline_d(ref_acc, ref_agree, window_agree, 10**9, 10**9)
    np.testing.assert_allclose(line.accuracy, window_acc, atol=1e-9)
    assert line.slope == pytest.approx(slope) and line.bias == pytest.approx(bias)
    assert line.r2 == pytest.approx(1.0)
    # no spread of agreement on the reference: no line, said as NaN
    flat = stats.aline_d(ref_acc, np.full(15, 0.9), window_agree, 1000, 1000)
    assert np.isnan(flat.r2)


def test_pair_agreements_count_each_pair_once_in_order():
    preds = np.array([[0, 1, 1, 0], [0, 1, 0, 0], [1, 1, 0, 0]])
    assert stats.pairs(3) == [(0, 1), (0, 2), (1, 2)]
    np.testing.assert_allclose(stats.pair_agreements(preds), [0.75, 0.5, 0.75])


def test_an_export_with_an_ensemble_estimates_accuracy_by_agreement(
    tmp_path, minilm_factory, feature_cache
):
    """An LP export carrying five heads: the reference holds them (read back checked), its
    track record on ID test has an ALine-D figure, and each monitored window -- movie snippets,
    then tweets -- has an estimate inside its 95 % interval, the line's fit, and columns of its
    own; over the two windows the estimate is near the labelled accuracy. A reference whose
    ensemble has the wrong shape is refused (exit 2)."""
    import safetensors.torch

    from safeadapt.data import load_builtin_task
    from safeadapt.errors import DataError
    from safeadapt.monitor import Monitor, Reference
    from safeadapt.monitor.members import check_ensemble
    from safeadapt.protocols import FitContext, make_protocol
    from tests.monitor.test_monitor import _csv, _export

    task = load_builtin_task("vader-sentiment").subsample(max_train=200, max_eval=200, seed=0)
    fit = make_protocol("lp").fit(FitContext(task, minilm_factory, 0, feature_cache, False))
    folder = _export(tmp_path / "export", fit.model, minilm_factory(), task,
                     {"name": "minilm", "options": {"max_length": 32}}, members=5)  # fmt: skip
    reference = Reference.load(folder)
    assert reference.members == 5 and reference.member_weight.shape == (10, 384)
    (check,) = reference.checks
    assert check.aline is not None and abs(check.aline - check.accuracy) < 0.1
    names = np.asarray(task.label_names)
    tweets = task.ood["tweets"]
    rows = [_csv(tmp_path / "movies.csv", task.test.inputs[:100], names[task.test.labels[:100]]),
            _csv(tmp_path / "tweets.csv", tweets.inputs[:100], names[tweets.labels[:100]])]  # fmt: skip
    result = Monitor(folder, tmp_path / "state", window=100, label_column="label").update(rows)
    errors = []
    for w in result.windows:
        aline = w.get("aline")
        assert aline.members == 5 and 0 <= aline.agreement <= 1
        low, high = aline.ci
        assert 0 <= low <= aline.estimate <= high <= 1 and high - low < 0.4
        errors.append(aline.estimate - w.get("accuracy").accuracy)
        assert {"aline", "aline_low", "aline_high", "aline_fit_p"} <= set(w.row())
    assert np.mean(np.abs(errors)) < 0.1, errors
    assert "ALine-D" in result.summary()
    # a tampered ensemble: refused when the reference is read
    path = folder / "monitor" / "reference.safetensors"
    tensors = safetensors.torch.load_file(path)
    tensors["member_bias"] = tensors["member_bias"][:, :1].contiguous()
    safetensors.torch.save_file(tensors, path)
    with pytest.raises(DataError, match="the ensemble's member_weight"):
        Reference.load(folder)
    for bad in (1, 21, True, -1):
        with pytest.raises(InvalidConfig, match="--ensemble must be 0"):
            check_ensemble(bad)
    for good in (None, 0, 2, 20):
        check_ensemble(good)
