"""The families' bar charts show every bar: the axis includes 0 and each value is written."""

from __future__ import annotations

import pytest

from safeadapt.safety import figures


@pytest.fixture
def drawn(monkeypatch):
    """The figure ``bars`` draws, kept open instead of rendered."""
    kept = []
    monkeypatch.setattr(figures, "png", lambda fig: kept.append(fig) or b"png")
    yield kept
    for fig in kept:
        figures.plt().close(fig)


def test_a_short_bar_is_not_cut_off_by_the_axis(drawn):
    # the report's OOD-detection chart once started at 0.3 and hid FT's 0.119 and energy's 0.032
    data = {"ft": {"max-logit": 0.119, "energy": 0.032}, "lp": {"max-logit": 0.9, "energy": 0.8}}
    figures.bars(data, "AUROC", hline=0.5, ylim=(0.3, 1.0))
    (ax,) = drawn[0].axes
    low, high = ax.get_ylim()
    assert low <= 0.0 and high >= 0.9
    written = {t.get_text() for t in ax.texts}
    assert {"0.119", "0.032", "0.9", "0.8"} <= written


def test_negative_bars_keep_their_side_of_zero(drawn):
    figures.bars({"ft": {"digits": -0.2}, "lp": {"digits": 0.05}}, "change", zero_line=True)
    (ax,) = drawn[0].axes
    low, high = ax.get_ylim()
    assert low <= -0.2 and high >= 0.05
