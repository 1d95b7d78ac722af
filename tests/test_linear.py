"""The linear probe reaches the optimum of its stated objective (checked against an independent
SciPy minimisation of the same function), for two classes (scikit-learn's binomial model, mapped
to the multinomial head) and more; a class with no training example is never predicted."""

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from safeadapt.linear import ProbeConfig, fit_linear_probe, probe_path


def _blobs(n, d, k, seed, sep=0.7):
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(k, d, generator=g) * sep
    y = torch.arange(n) % k
    return centers[y] + torch.randn(n, d, generator=g), y


def _objective(params, x, y, k, C):
    """mean CE(W x + b, y) + ||W||^2 / (2 C N), and its gradient; params = [W (D x K), b (K)]."""
    n, d = x.shape
    w, b = params[: d * k].reshape(d, k), params[d * k :]
    z = x @ w + b
    z = z - z.max(1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    loss = -np.log(p[np.arange(n), y]).mean() + (w**2).sum() / (2 * C * n)
    p[np.arange(n), y] -= 1
    gw = x.T @ p / n + w / (C * n)
    return loss, np.concatenate([gw.ravel(), p.mean(0)])


@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("C", [0.01, 1.0])
def test_the_probe_reaches_the_objectives_optimum(k, C):
    x, y = _blobs(300, 12, k, seed=0)
    v, vy = _blobs(60, 12, k, seed=1)
    head = fit_linear_probe(x, y, v, vy, k, ProbeConfig(c_grid=(C,), standardize=False))
    xn, yn = x.double().numpy(), y.numpy()
    reference = minimize(_objective, np.zeros(12 * k + k), args=(xn, yn, k, C), jac=True,
                         method="L-BFGS-B", options={"gtol": 1e-12, "maxiter": 20000})  # fmt: skip
    ours = np.concatenate([head.weight.double().numpy().T.ravel(), head.bias.double().numpy()])
    gap = _objective(ours, xn, yn, k, C)[0] - reference.fun
    assert gap < 1e-6, gap  # the same optimum (scale-free: the objective is a mean)
    assert gap > -1e-6  # and not a different objective that happens to be lower


@pytest.mark.parametrize("k", [2, 3])
def test_the_c_chosen_on_a_loose_path_is_polished_to_its_optimum(k):
    """The path compares C values at the selection tolerance; the head returned is the chosen
    C's optimum to 1e-6 all the same, and its validation scores are the polished head's."""
    x, y = _blobs(300, 12, k, seed=4, sep=0.5)
    v, vy = _blobs(80, 12, k, seed=5, sep=0.5)
    grid = (0.001, 0.01, 0.1, 1.0, 10.0, 100.0)
    head = fit_linear_probe(x, y, v, vy, k, ProbeConfig(c_grid=grid, standardize=False))
    xn, yn, C = x.double().numpy(), y.numpy(), head.C
    reference = minimize(_objective, np.zeros(12 * k + k), args=(xn, yn, k, C), jac=True,
                         method="L-BFGS-B", options={"gtol": 1e-12, "maxiter": 20000})  # fmt: skip
    ours = np.concatenate([head.weight.double().numpy().T.ravel(), head.bias.double().numpy()])
    assert abs(_objective(ours, xn, yn, k, C)[0] - reference.fun) < 1e-6
    acc = (head.logits(v).argmax(1) == vy).double().mean().item()
    assert head.val_accuracy == pytest.approx(acc)
    assert [s["C"] for s in head.sweep] == sorted(grid)


def test_the_path_warm_starts_in_c_order_and_a_missing_class_is_never_predicted():
    x, y = _blobs(200, 8, 2, seed=2)
    path = probe_path(x, y, 3, (1.0, 0.01))  # class 2 has no training example
    assert [c for c, _ in path] == [0.01, 1.0]
    for _, head in path:
        assert (head.logits(x).argmax(1) != 2).all()
        assert head.bias[2] < head.bias[:2].min() - 10
    norms = [float(h.weight.norm()) for _, h in path]
    assert norms[0] < norms[1]  # weaker regularisation, larger weights


def test_a_repeated_fit_is_reused_by_content_and_returned_as_a_copy(monkeypatch):
    import safeadapt.linear as linear

    calls = []
    real = linear._fit_linear_probe
    monkeypatch.setattr(linear, "_fit_linear_probe", lambda *a: calls.append(1) or real(*a))
    monkeypatch.setattr(linear, "_MEMO", type(linear._MEMO)())
    gen = torch.Generator().manual_seed(3)
    x, v = torch.randn(60, 5, generator=gen), torch.randn(20, 5, generator=gen)
    y, vy = (x[:, 0] > 0).long(), (v[:, 0] > 0).long()
    first = fit_linear_probe(x, y, v, vy, 2)
    first.weight.zero_()  # a caller's edit must not reach the next caller
    again = fit_linear_probe(x.clone(), y, v, vy, 2)
    assert len(calls) == 1 and again.weight.abs().sum() > 0
    x[0, 0] += 1e-3  # one changed value: a new fit
    fit_linear_probe(x, y, v, vy, 2)
    fit_linear_probe(x, y, v, vy, 2, ProbeConfig(c_grid=(0.1,)))  # other settings: a new fit
    assert len(calls) == 3
