"""Charts keep their bytes when drawn the fast way."""

from __future__ import annotations

from pathlib import Path

import matplotlib.style
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

