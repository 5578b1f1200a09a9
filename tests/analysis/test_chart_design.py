"""Charts a consultant can show: dots on log axes, the study's title with one named statistic,
a 16:9 slide aspect, the client's own colour, labels that never overlap, nothing said twice."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib.figure import Figure
from typer.testing import CliRunner

from mystery.analysis import charts
from mystery.cli import app
from tests.analysis.synthetic import make_study

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Figure]]:
    """Every figure a chart function saves, kept after its layout ran (what was drawn)."""
    figures: list[Figure] = []
    save = charts._save

    def keep(fig: Figure, stem: Path) -> list[Path]:
        paths = save(fig, stem)
        figures.append(fig)
        return paths

    monkeypatch.setattr(charts, "_save", keep)
    yield figures


def _texts(svg: Path) -> list[str]:
    return [re.sub(r"<[^>]+>", "", t) for t in re.findall(r"<text[^>]*>(.*?)</text>",
                                                          svg.read_text(), re.S)]


def test_a_ranking_is_dots_on_a_log_axis_never_bars(tmp_path: Path, drawn: list[Figure]) -> None:
    from matplotlib.collections import PathCollection
    from matplotlib.patches import PathPatch, Rectangle

    bars = [charts.Bar("Fast", 600.0, 3, 3), charts.Bar("Slow", 36000.0, 2, 3),
            charts.Bar("Silent", None, 0, 3, censored_at=604800.0)]
    charts.ranking(bars, tmp_path / "r", title="A study", subtitle="Median time", xlabel="t",
                   note="n = 9")
    ax = drawn[0].axes[0]
    assert ax.get_xscale() == "log"
    assert not [p for p in ax.patches if isinstance(p, PathPatch | Rectangle)]  # no bar at all
    dots = [c for c in ax.collections if isinstance(c, PathCollection)]
    positions = sorted(float(x) for c in dots for x in np.asarray(c.get_offsets())[:, 0])
    assert positions == [600.0, 36000.0, 604800.0]  # each brand a mark at its value
    texts = _texts(tmp_path / "r.svg")
    assert "fewer than half answered by the cutoff (0/3 answered)" in texts


def test_the_one_brand_ranked_is_named_once(tmp_path: Path) -> None:
    """When one brand is both fastest and slowest, 'Voltage 27 min' is said once, not twice."""
    year = charts.YearRange(2026, True, ("Voltage", 1620.0), ("Voltage", 1620.0), 1500.0)
    charts.yoy({"bluesky": [year]}, tmp_path / "y", title="A study", note="n = 3")
    texts = _texts(tmp_path / "y.svg")
    assert sum("Voltage 27 min" in t for t in texts) == 1, texts


def test_slide_aspect_is_16_by_9_at_twice_the_size(tmp_path: Path) -> None:
    from PIL import Image

    bars = [charts.Bar(f"Brand {i:02d}", 60.0 * (i + 1), 3, 3) for i in range(40)]
    charts.ranking(bars, tmp_path / "s", title="A study", xlabel="t", note="n = 120",
                   aspect="slide", highlight=["Brand 20"])
    with Image.open(tmp_path / "s.png") as png:
        assert png.size == (1920, 1080)
    texts = _texts(tmp_path / "s.svg")
    assert "Brand 20" in texts and "Brand 00" in texts and "Brand 39" in texts
    assert "Brand 10" not in texts  # rows that do not fit are counted, not squeezed
    with pytest.raises(ValueError, match="aspect 'poster'"):
        charts.ranking(bars, tmp_path / "p", title="t", xlabel="t", note="n", aspect="poster")


def _boxes(fig: Figure) -> tuple[list[Any], list[Any]]:
    """Display-space boxes of every text in the axes and of every dot."""
    from matplotlib.collections import PathCollection
    from matplotlib.transforms import Bbox

    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    labels, dots = [], []
    for ax in fig.axes:
        labels += [t.get_window_extent(renderer) for t in ax.texts]
        for c in ax.collections:
            if isinstance(c, PathCollection):
                radius = (max(c.get_sizes()) ** 0.5) / 2 * fig.dpi / 72
                for x, y in ax.transData.transform(c.get_offsets()):
                    dots.append(Bbox.from_extents(x - radius, y - radius, x + radius, y + radius))
    return labels, dots


@pytest.mark.parametrize("aspect", ["report", "slide"])
def test_a_highlighted_label_overlaps_no_dot_and_no_other_label(
    tmp_path: Path, drawn: list[Figure], aspect: str
) -> None:
    # A crowded sector, the client in the middle of it, a second client in the same sector.
    points = [charts.Point("grocery", f"Peer {i}", 600.0 * 1.25 ** i) for i in range(12)]
    points += [charts.Point("grocery", "Client", 600.0 * 1.25 ** 5.5),
               charts.Point("grocery", "Other", 600.0 * 1.25 ** 6.2),
               charts.Point("fashion", "Peer F", 900.0)]
    charts.distribution({"x · 2026": points, "mastodon · 2026": points[:4]}, tmp_path / "d",
                        title="A study", xlabel="t", note="n", aspect=aspect,
                        highlight=["Client", "Other"], colour="#e07b00")
    labels, dots = _boxes(drawn[0])
    assert len(labels) == 1  # one label for the two clients of one sector
    for label in labels:
        assert not [d for d in dots if label.overlaps(d)]
    assert "Client 34 min 07 s · Other 39 min 53 s" in _texts(tmp_path / "d.svg")
    assert "fill: #e07b00" in (tmp_path / "d.svg").read_text()


def _copy_project(tmp_path: Path) -> Path:
    (tmp_path / "studies").mkdir(parents=True)
    shutil.copy(REPO / "studies" / "veeqo-uk-retail-2014.csv", tmp_path / "studies")
    for year in (2025, 2026):
        make_study(tmp_path, series="uk-retail", year=year, brands=4, probes_per_brand=2)
    make_study(tmp_path, series="telco", year=2026, brands=3, probes_per_brand=2)
    return tmp_path


def _bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def test_publish_highlight_touches_only_series_with_the_brand_or_writes_to_out(
    tmp_path: Path,
) -> None:
    root = _copy_project(tmp_path / "project")
    runner = CliRunner()
    assert runner.invoke(app, ["publish", "--root", str(root), "--jobs", "1"]).exit_code == 0
    before = _bytes(root / "results")
    # B&Q is a brand of the 2014 uk-retail figures only: telco and the studies are untouched.
    result = runner.invoke(app, ["publish", "--root", str(root), "--jobs", "1",
                                 "--highlight", "B&Q", "--colour", "#E07B00"])
    assert result.exit_code == 0, result.output
    after = _bytes(root / "results")
    changed = sorted(name for name in after if after[name] != before[name])
    assert changed and all(name.startswith("uk-retail/") for name in changed), changed
    assert "fill: #e07b00" in (root / "results/uk-retail/yoy.svg").read_text()

    # With --out, results/ is left exactly as it was and the folder is complete.
    runner.invoke(app, ["publish", "--root", str(root), "--jobs", "1"])
    before = _bytes(root / "results")
    out = tmp_path / "client"
    result = runner.invoke(app, ["publish", "--root", str(root), "--jobs", "1",
                                 "--highlight", "B&Q", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert _bytes(root / "results") == before
    made = _bytes(out)
    assert {"uk-retail/yoy.svg", "uk-retail/yoy.csv", "telco/ranking-x.png",
            "uk-retail-2026/ack_by_brand.svg"} <= set(made)
    assert "B&amp;Q" in made["uk-retail/yoy.svg"].decode()


def test_a_colour_that_is_not_one_is_refused_with_how_to_write_it(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["publish", "--root", str(tmp_path), "--colour", "red"])
    assert result.exit_code == 1
    assert result.output.strip() == ("Error: --colour 'red' is not a colour; write it as "
                                     "#RRGGBB, e.g. '#1764ab'")


def test_a_study_chart_is_titled_by_the_study_title_with_its_one_statistic(
    tmp_path: Path,
) -> None:
    make_study(tmp_path, series="telco", year=2026, brands=3, probes_per_brand=2)
    assert CliRunner().invoke(app, ["publish", "--root", str(tmp_path), "--jobs", "1"]) \
        .exit_code == 0
    texts = _texts(tmp_path / "results/telco-2026/ack_by_brand.svg")
    assert "telco 2026 (synthetic data)" in texts  # the study's title, marked synthetic
    assert [t for t in texts if t.startswith("Median time to acknowledgement by brand "
                                             "(Kaplan–Meier, unanswered censored); fastest ")]
    series = _texts(tmp_path / "results/telco/ranking-x.svg")
    assert "telco 2026" in series  # a series chart: its newest study's title
    assert [t for t in series if t.startswith("Mean time to acknowledgement over answered probes")]
    assert not [t for t in series if "Median" in t]  # one statistic per chart
    survival = _texts(tmp_path / "results/telco/survival.svg")
    assert "telco 2026" in survival and not [t for t in survival if t.startswith("telco:")]
    assert [t for t in survival if t.startswith("Share of probes still unanswered over time "
                                                "(Kaplan–Meier")]
