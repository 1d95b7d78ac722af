"""Group metrics (fairlearn ``MetricFrame``): per-group accuracy, worst group, the best-worst
gap, the worst group x class cell, the TPR gap between groups (binary tasks), demographic-parity
and equalised-odds differences, on every evaluation split that carries two or more groups
(``safeadapt.metrics.groups.group_report``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from safeadapt.metrics.groups import GroupReport, group_report
from safeadapt.results import StudySummary
from safeadapt.results.safety import dump_value, load_value
from safeadapt.safety.base import (
    EvalContext,
    Family,
    SafetyResult,
    Score,
    register_family,
)


@dataclass(frozen=True)
class GroupsConfig:
    """No settings: the groups are the task's (``group_column``, or the built-in slices)."""


@dataclass(frozen=True)
class GroupsResult(SafetyResult):
    """Per evaluation split with at least two groups (stored flat: ``{split: {...}}``)."""

    splits: dict[str, GroupReport]

    def to_json(self) -> dict[str, Any]:
        return {k: dump_value(v) for k, v in self.splits.items()}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> GroupsResult:
        return cls({k: load_value(GroupReport, v) for k, v in raw.items()})


@register_family("groups", order=80)
class Groups(Family):
    title = "Per-group accuracy, worst group and gap (fairlearn)"
    Config = GroupsConfig
    Result = GroupsResult
    SCORES = {
        "worst_group_accuracy": ("worst-group acc", True, ".3f"),
        "group_gap": ("group gap", False, ".3f"),
        "worst_cell_accuracy": ("worst-cell acc (group x class)", True, ".3f"),
        "tpr_gap": ("TPR gap between groups", False, ".3f"),
    }

    def measure(self, ctx: EvalContext, config: GroupsConfig) -> GroupsResult:
        out = {}
        for name, split in ctx.task.eval_splits().items():
            if split.groups is None or len(np.unique(split.groups.astype(str))) < 2:
                continue
            pred = ctx.logits(name).argmax(1).numpy()
            out[name] = group_report(split.labels, pred, split.groups)
        return GroupsResult(out)

    def scores(self, result: GroupsResult) -> dict[str, Score]:
        test = result.splits.get("test")
        values = {
            "worst_group_accuracy": test.worst_group_accuracy if test else None,
            "group_gap": test.accuracy_gap if test else None,
            "worst_cell_accuracy": test.worst_cell_accuracy if test else None,
            "tpr_gap": test.tpr_gap if test else None,
        }
        return self.declared(values)

    def intervals(self, results: list[GroupsResult], outputs: Any) -> dict[str, tuple]:
        """Worst group, group gap, worst cell and TPR gap on ID test (per seed, averaged): a
        bootstrap that resamples examples within each group x class cell, so every cell keeps its
        size."""
        from safeadapt.metrics.intervals import stratified_bootstrap

        test = outputs.split("test") if outputs else None
        groups = outputs.labels_of("test", "group") if outputs else None
        if test is None or groups is None:
            return {}
        labels, correct, probs = test
        preds = probs.argmax(-1)  # (S, N)
        groups = groups.astype(str)
        cells = sorted({(g, int(y)) for g, y in zip(groups, labels, strict=True)})
        parts = {}
        for g, y in cells:
            idx = np.flatnonzero((groups == g) & (labels == y))
            parts[f"{g}|{y}"] = [correct[:, idx].astype(float), preds[:, idx].astype(float)]
        positive = labels.max() if len(np.unique(labels)) == 2 else None

        def stats(d) -> dict[str, float]:
            by_cell = {k: v[0].mean(1) for k, v in d.items()}  # (S,) accuracy per cell
            names = sorted({k.rsplit("|", 1)[0] for k in d})
            by_group = {
                g: np.concatenate([v[0] for k, v in d.items() if k.startswith(g + "|")], 1).mean(1)
                for g in names
            }
            group_acc = np.stack(list(by_group.values()))  # (G, S)
            cell_acc = np.stack(list(by_cell.values()))  # (C, S)
            out = {
                "worst_group_accuracy": float(group_acc.min(0).mean()),
                "group_gap": float((group_acc.max(0) - group_acc.min(0)).mean()),
                "worst_cell_accuracy": float(cell_acc.min(0).mean()),
            }
            if positive is not None:
                tpr = np.stack(
                    [(d[f"{g}|{positive}"][1] == positive).mean(1) for g in names
                     if f"{g}|{positive}" in d]
                )  # fmt: skip
                out["tpr_gap"] = float((tpr.max(0) - tpr.min(0)).mean())
            return out

        keys = list(stats(parts))
        lo, hi = stratified_bootstrap(lambda d: [stats(d)[k] for k in keys], parts)
        method = "bootstrap (stratified by group x class cell)"
        return {k: (float(lo[i]), float(hi[i]), method) for i, k in enumerate(keys)}

    def figure(
        self, results: dict[str, list[GroupsResult]], summary: StudySummary | None = None
    ) -> bytes | None:
        """Accuracy per group on ID test (worst group = lowest bar; mean over seeds)."""
        from safeadapt.safety.figures import bars, mean_over_seeds

        data = mean_over_seeds(
            results,
            lambda r: (
                {g: v.accuracy for g, v in r.splits["test"].by_group.items()}
                if "test" in r.splits
                else {}
            ),
        )
        return bars(data, "accuracy on ID test") if data else None
