"""Weight-space arithmetic on state dicts (pure functions that check keys first).

- ``interpolate`` (WiSE-FT, Wortsman et al. 2022): ``theta(alpha) = (1 - alpha) theta_0 +
  alpha theta_1``.
- ``uniform_soup`` (model soups, Wortsman et al. 2022): the mean of several state dicts.
- ``greedy_soup``: add candidates in order of held-out accuracy, keeping each only if the
  held-out accuracy of the running average does not drop. Selection sees a validation split only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from torch import Tensor

from safeadapt.errors import InvalidConfig

StateDict = Mapping[str, Tensor]


def _check(states: Sequence[StateDict]) -> None:
    if not states:
        raise InvalidConfig("weight merging needs at least one state dict.")
    keys = set(states[0])
    for i, sd in enumerate(states[1:], 1):
        if set(sd) != keys:
            diff = sorted(keys ^ set(sd))[:3]
            raise InvalidConfig(
                f"state dict {i} has different keys from state dict 0 (e.g. {diff})."
            )
        for k in keys:
            if sd[k].shape != states[0][k].shape:
                raise InvalidConfig(
                    f"state dict {i}: {k!r} has shape {tuple(sd[k].shape)}, "
                    f"expected {tuple(states[0][k].shape)}."
                )


def _is_float(t: Tensor) -> bool:
    return torch.is_floating_point(t)


def interpolate(theta0: StateDict, theta1: StateDict, alpha: float) -> dict[str, Tensor]:
    """``(1 - alpha) * theta0 + alpha * theta1`` for float tensors; integer buffers (e.g. BatchNorm
    ``num_batches_tracked``) come from ``theta1``. ``alpha`` = 0 / 1 return exact copies."""
    _check([theta0, theta1])
    if not 0 <= alpha <= 1:
        raise InvalidConfig(f"WiSE-FT 'alpha' must be in [0, 1]; got {alpha!r}.")
    out = {}
    for k, a in theta0.items():
        b = theta1[k]
        if not _is_float(a) or alpha == 1:
            out[k] = b.clone()
        elif alpha == 0:
            out[k] = a.clone()
        else:
            out[k] = torch.lerp(a.float(), b.float(), alpha).to(a.dtype)
    return out


def uniform_soup(states: Sequence[StateDict]) -> dict[str, Tensor]:
    """The element-wise mean of ``states`` (integer buffers from the first)."""
    _check(states)
    out = {}
    for k, first in states[0].items():
        if _is_float(first):
            out[k] = torch.stack([sd[k].float() for sd in states]).mean(0).to(first.dtype)
        else:
            out[k] = first.clone()
    return out


def greedy_soup(
    states: Sequence[StateDict],
    score: Callable[[dict[str, Tensor]], float],
    order: Sequence[float] | None = None,
) -> tuple[dict[str, Tensor], list[int], list[float]]:
    """Greedy soup: visit ``states`` by decreasing ``order`` (default: their own held-out score),
    keep each one whose addition does not lower ``score`` of the uniform soup so far.

    Returns the soup, the kept indices and the score after each visit."""
    _check(states)
    scores = list(order) if order is not None else [score(dict(sd)) for sd in states]
    ranked = sorted(range(len(states)), key=lambda i: -scores[i])
    kept = [ranked[0]]
    best = score(uniform_soup([states[ranked[0]]]))
    trace = [best]
    for i in ranked[1:]:
        trial = uniform_soup([states[j] for j in [*kept, i]])
        s = score(trial)
        if s >= best:
            kept.append(i)
            best = s
        trace.append(best)
    return uniform_soup([states[j] for j in kept]), kept, trace
