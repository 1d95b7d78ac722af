"""What a monitor update returns: every window of the state, which were new, the rows waiting,
and a summary that reads each window's signals through the registry."""

from __future__ import annotations

from dataclasses import dataclass

from safeadapt.monitor.signals import signal_for
from safeadapt.monitor.window import AlertPolicy, WindowResult


@dataclass(frozen=True)
class MonitorResult:
    """Every window of the state, which of them this update measured, and the rows waiting."""

    windows: tuple[WindowResult, ...]
    new: tuple[int, ...]
    pending: int
    skipped: int  # rows already counted in an earlier update
    policy: AlertPolicy
    estimate_error: dict[str, float | None]
    notes: tuple[str, ...] = ()  # e.g. the signals changed and a new alert budget started
    budgets: tuple[int, ...] = ()  # windows from which a new alert budget started

    @property
    def new_alerts(self) -> tuple[WindowResult, ...]:
        return tuple(w for w in self.windows if w.index in self.new and w.alerts)

    def frame(self):
        import pandas as pd

        return pd.DataFrame([w.row() for w in self.windows])

    def _repr_html_(self) -> str:
        """The windows' table and the alert status, styled under one root class (a notebook
        page keeps its own styles)."""
        from safeadapt.monitor.html import fragment

        return fragment(self)

    def summary(self) -> str:
        lines = [f"{len(self.new)} new window(s), {len(self.windows)} in all; {self.skipped} "
                 f"row(s) counted before were skipped; {self.pending} row(s) wait for the next "
                 f"window. Alerts: {self.policy.describe()}."]  # fmt: skip
        err = self.estimate_error
        track = ", ".join(
            f"{signal_for(k).label if signal_for(k) else k} off by up to {v:.3f}"
            for k, v in err.items()
            if v is not None
        )
        lines += [f"  {note}" for note in self.notes]
        lines += [f"  {window_line(w)}" for w in self.windows if w.index in self.new]
        if track:
            lines.append(f"On the study's labelled shifted splits the estimates were {track} "
                         "(their 95 % intervals hold where the model errs as on the "
                         "reference; a shift can break that).")  # fmt: skip
        return "\n".join(lines)


def window_line(w: WindowResult) -> str:
    """A window's summary: its alert status, then each signal's text -- the accuracy estimates,
    the OOD rates, then the rest (labelled accuracy, conformal coverage)."""
    estimates, rates, others = [], [], []
    for name, result in w.signals.items():
        signal = signal_for(name)
        text = signal.text(result) if signal else None
        if text:
            group = (estimates if signal.estimate(result) else
                     rates if signal.rate(result) else others)  # fmt: skip
            group.append(text)
    parts = [f"ALERT ({', '.join(w.alerts)})" if w.alerts else "ok"]
    if estimates:
        parts.append("estimated accuracy " + ", ".join(estimates))
    if rates:
        parts.append("OOD rate: " + ", ".join(rates))
    if others:
        parts.append(", ".join(others))
    return f"window {w.index} ({w.rows} rows): " + "; ".join(parts)
