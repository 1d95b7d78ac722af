"""Curating a split to a chosen label-attribute correlation or group shares (array work on the
split's labels and groups; the audit that explains why lives in ``safeadapt.bias``).

Binary label x binary group (Wang & Russakovsky, ICCV 2023): the two "aligned" cells get a share
``(1 + rho) / 4`` each, the other two ``(1 - rho) / 4``; rho = 1 fully correlated, 0 independent,
-1 anti-correlated. Or chosen group shares, the label mix kept within each group. By resampling
(``mode="resample"``) or as sample weights (``mode="reweight"``); seeded; the original split is
never modified; the report says what was dropped or duplicated.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from safeadapt.data.task import Split
from safeadapt.errors import DataError, InvalidConfig
from safeadapt.results.audit import CurationReport


def split_groups(split: Split) -> np.ndarray:
    if split.groups is None:
        raise DataError(
            f"Split {split.name!r} has no group attribute: give the task a 'group_column' "
            "(load_task(..., group_column=...)) to audit or curate by group."
        )
    return np.asarray(split.groups).astype(str)


def phi(labels: np.ndarray, groups: np.ndarray, positive_group: str) -> float:
    """Pearson correlation of binary label (1 = positive) and ``groups == positive_group``."""
    a = (np.asarray(groups).astype(str) == positive_group).astype(float)
    y = (np.asarray(labels) == np.max(labels)).astype(float)
    if a.std() == 0 or y.std() == 0:
        return 0.0
    return float(np.corrcoef(a, y)[0, 1])


def _cell_shares_correlation(
    labels: np.ndarray, groups: np.ndarray, rho: float, positive_group: str
) -> dict[tuple[str, int], float]:
    gs = [str(g) for g in sorted(np.unique(groups))]
    cs = sorted(np.unique(labels).tolist())
    if len(gs) != 2 or len(cs) != 2:
        raise InvalidConfig(
            "curate 'target_correlation' needs a binary label and exactly two groups; got "
            f"{len(cs)} labels and groups {gs}. Use 'group_shares' instead."
        )
    if positive_group not in gs:
        raise InvalidConfig(f"curate 'positive_group' must be one of {gs}; got {positive_group!r}.")
    other = next(g for g in gs if g != positive_group)
    aligned, crossed = (1 + rho) / 4, (1 - rho) / 4
    return {
        (positive_group, cs[1]): aligned,
        (other, cs[0]): aligned,
        (positive_group, cs[0]): crossed,
        (other, cs[1]): crossed,
    }


def _round(shares: Mapping[tuple[str, int], float], size: int) -> dict[tuple[str, int], int]:
    """Integer counts summing to ``size`` (largest remainders)."""
    exact = {k: v * size for k, v in shares.items()}
    counts = {k: int(np.floor(v)) for k, v in exact.items()}
    for k in sorted(exact, key=lambda k: -(exact[k] - counts[k]))[: size - sum(counts.values())]:
        counts[k] += 1
    return counts


def curate(
    split: Split,
    *,
    target_correlation: float | None = None,
    group_shares: Mapping[str, float] | None = None,
    size: int | None = None,
    positive_group: str | None = None,
    mode: str = "resample",
    allow_duplicates: bool = False,
    seed: int = 0,
) -> tuple[Split | np.ndarray, CurationReport]:
    """A curated copy of ``split`` (``resample``) or per-example weights (``reweight``), and a
    report of cells before / after, what was dropped or duplicated, and the achieved values."""
    if (target_correlation is None) == (group_shares is None):
        raise InvalidConfig("curate: give exactly one of 'target_correlation' or 'group_shares'.")
    if mode not in ("resample", "reweight"):
        raise InvalidConfig(f"curate 'mode' must be 'resample' or 'reweight'; got {mode!r}.")
    groups = split_groups(split)
    labels = np.asarray(split.labels)
    size = size or len(split)
    if size < 1:
        raise InvalidConfig(f"curate 'size' must be >= 1; got {size}.")
    gs = [str(g) for g in sorted(np.unique(groups))]
    if target_correlation is not None:
        if not -1 <= target_correlation <= 1:
            raise InvalidConfig(
                f"curate 'target_correlation' must be in [-1, 1]; got {target_correlation}."
            )
        pg = positive_group or gs[-1]
        shares = _cell_shares_correlation(labels, groups, target_correlation, pg)
    else:
        unknown = sorted(set(group_shares) - set(gs))  # type: ignore[arg-type]
        if unknown:
            raise InvalidConfig(
                f"curate 'group_shares' names unknown groups {unknown}; groups are {gs}."
            )
        total = sum(group_shares.values())  # type: ignore[union-attr]
        if abs(total - 1) > 1e-6 or any(v < 0 for v in group_shares.values()):  # type: ignore[union-attr]
            raise InvalidConfig(
                f"curate 'group_shares' must be >= 0 and sum to 1; they sum to {total:.3f}."
            )
        shares: dict[tuple[str, int], float] = {}
        for g, share in group_shares.items():  # type: ignore[union-attr]
            in_g = labels[groups == g]
            for c in np.unique(in_g):
                shares[(g, int(c))] = share * float(np.mean(in_g == c))
    targets = _round(shares, size)
    available = {k: np.flatnonzero((groups == k[0]) & (labels == k[1])) for k in targets}
    before = {f"{g}|{c}": int(len(v)) for (g, c), v in available.items()}
    if mode == "reweight":
        weights = np.zeros(len(split))
        for k, idx in available.items():
            if shares[k] > 0 and not len(idx):
                raise DataError(
                    f"curate: cell group={k[0]!r}, label={k[1]} is empty; it cannot be reweighted up."
                )
            if len(idx):
                weights[idx] = shares[k] / (len(idx) / len(split))
        target_cells = {f"{g}|{c}": n for (g, c), n in targets.items()}
        return weights, CurationReport(mode, before, target_cells=target_cells)
    rng = np.random.default_rng(seed)
    chosen, dropped, duplicated = [], 0, 0
    for k, need in targets.items():
        idx = rng.permutation(available[k])
        if need > len(idx) and not allow_duplicates:
            raise DataError(
                f"curate: cell group={k[0]!r}, label={k[1]} needs {need} examples but has "
                f"{len(idx)}. Lower 'size', change the target, or pass allow_duplicates=True."
            )
        if need <= len(idx):
            chosen.append(idx[:need])
            dropped += len(idx) - need
        else:
            if not len(idx):
                raise DataError(
                    f"curate: cell group={k[0]!r}, label={k[1]} is empty; nothing to duplicate."
                )
            extra = rng.choice(idx, need - len(idx), replace=True)
            chosen.append(np.concatenate([idx, extra]))
            duplicated += need - len(idx)
    order = rng.permutation(np.concatenate(chosen))
    curated = split.subset(order, f"{split.name}-curated")
    cur_groups, cur_labels = np.asarray(curated.groups).astype(str), curated.labels
    correlated = target_correlation is not None
    pg = positive_group or gs[-1]
    return curated, CurationReport(
        mode,
        before,
        size=len(curated),
        cells_after={
            f"{g}|{c}": int(np.sum((cur_groups == g) & (cur_labels == c))) for (g, c) in targets
        },
        dropped=int(dropped),
        duplicated=int(duplicated),
        group_shares={g: float(np.mean(cur_groups == g)) for g in gs},
        correlation=phi(cur_labels, cur_groups, pg) if correlated else None,
        correlation_before=phi(labels, groups, pg) if correlated else None,
    )
