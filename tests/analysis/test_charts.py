"""Charts keep their bytes when drawn the fast way."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.style
import pytest
from matplotlib.figure import Figure

from mystery.analysis import charts


def _figure() -> Figure:
    fig = charts._figure(3.0)
    ax = fig.add_subplot()
    ax.step([60.0, 600.0, 3600.0, 86400.0], [100.0, 60.0, 20.0, 5.0], where="post", label="2026")
    ax.set_ylabel("% of probes still unanswered")
    charts._time_axis(ax, 60.0, 604800.0)
    ax.legend(loc="upper right")
    charts._finish(fig, "A title", "n = 3 probes · a method note long enough to wrap " * 4)
    return fig


def test_one_layout_pass_gives_the_bytes_savefig_would(tmp_path: Path) -> None:
    # _save lays the figure out once and draws PNG and SVG without matplotlib's dry runs;
    # a matplotlib upgrade that changed what that means would show up here first.
    with matplotlib.style.context(["default", charts.STYLE]):
        charts._save(_figure(), tmp_path / "fast")
        fig = _figure()
        fig.savefig(tmp_path / "plain.png", format="png", metadata={"Software": None},
                    pil_kwargs={"compress_level": 3})
        fig.set_layout_engine("none")
        fig.savefig(tmp_path / "plain.svg", format="svg", metadata={"Date": None})
    charts._stable_clip_ids(tmp_path / "plain.svg")  # what _save does after drawing
    for suffix in (".png", ".svg"):
        fast = (tmp_path / "fast").with_suffix(suffix).read_bytes()
        assert fast == (tmp_path / "plain").with_suffix(suffix).read_bytes(), suffix



def test_survival_chart_draws_the_band_and_a_tick_per_censoring_time(tmp_path: Path) -> None:
    import polars as pl

    from mystery.analysis import metrics

    # Six probes: four answered, two unanswered censored at a 1-day cutoff.
    frame = pl.DataFrame({
        "status": ["answered"] * 4 + ["unanswered"] * 2,
        "ack_seconds": [60.0, 600.0, 1200.0, 3600.0, None, None],
        "cutoff_seconds": [86400.0] * 6,
    })
    grid = [60.0 * 2 ** (i / 2) for i in range(22)]
    band = metrics.survival_band(frame, grid)
    assert band is not None and band.n == 6 and band.answered == 4
    [(at, share)] = band.censored
    assert at == 86400.0 and share == pytest.approx(2 / 6)
    # Where the band is defined it holds the curve; it is undefined before the first answer.
    assert math.isnan(band.low[0]) is False  # the grid starts at the first answer
    for w, lo, hi in zip(band.waiting, band.low, band.high, strict=True):
        if not math.isnan(lo):
            assert lo <= w <= hi
    curve = charts.Curve("2026 (n = 6)", False, grid, band.waiting, band.low, band.high,
                         band.censored)
    with matplotlib.style.context(["default", charts.STYLE]):
        charts.survival({"x": [curve]}, tmp_path / "survival", title="t", note="n")
    svg = (tmp_path / "survival.svg").read_text(encoding="utf-8")
    assert svg.count('id="FillBetweenPolyCollection_') + svg.count('id="PolyCollection_') == 1
    without = charts.Curve("2026 (n = 6)", False, grid, band.waiting)
    with matplotlib.style.context(["default", charts.STYLE]):
        charts.survival({"x": [without]}, tmp_path / "bare", title="t", note="n")
    bare = (tmp_path / "bare.svg").read_text(encoding="utf-8")
    assert "PolyCollection_" not in bare
    assert bare.count('id="line2d_') < svg.count('id="line2d_')  # the tick marks
