"""``mystery pack``: the client against its peers, as a page, a PDF and slide charts."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
import pytest
from PIL import Image
from typer.testing import CliRunner

from mystery.analysis import km
from mystery.cli import app
from mystery.pack import figures
from mystery.timings import schema as timings
from tests.analysis.synthetic import make_study


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def test_pack_writes_the_page_the_pdf_and_slide_charts_and_nothing_else(
    ran: Path, tmp_path: Path
) -> None:
    before = _files(ran)
    out = tmp_path / "pack"
    result = CliRunner().invoke(app, ["pack", str(ran / "demo.toml"), "--client", "Fresh Lane",
                                      "--out", str(out), "--results", str(ran / "results")])
    assert result.exit_code == 0, result.output
    assert _files(ran) == before  # the study folder (store, results) is untouched
    assert sorted(_files(out)) == ["charts/ranking-x.png", "charts/ranking-x.svg",
                                   "index.html", "pack.pdf"]
    assert (out / "pack.pdf").read_bytes().startswith(b"%PDF-")
    with Image.open(out / "charts/ranking-x.png") as png:
        assert png.size == (1920, 1080)  # 16:9 at 2×
    svg = (out / "charts/ranking-x.svg").read_text()
    assert ">Fresh Lane</text>" in svg.replace("\n", "")  # editable text, not outlines
    html = (out / "index.html").read_text()
    assert "Fresh Lane against its peers" in html and 'id="standing"' in html
    # Where the client is fastest and slowest: by question and by send window.
    assert "Where Fresh Lane is fastest and slowest" in html and ">delivery<" in html
    assert [w for w in ("weekday", "evening", "weekend") if f">{w}<" in html]
    # Nothing to fetch: every reference is to the page itself (the browser test watches
    # the network as well).
    assert not re.findall(r'(?:src|href)="(?!#)', html)
    assert "url(http" not in html and "@import" not in html


def test_the_page_states_the_rank_and_medians_computed_from_the_probes(
    ran: Path, tmp_path: Path
) -> None:
    """The rank and the client's interval on the page are the Kaplan–Meier figures of the
    store's probes, recomputed here from the exported timings."""
    out = tmp_path / "pack"
    assert CliRunner().invoke(app, ["pack", str(ran / "demo.toml"), "--client", "Fresh Lane",
                                    "--out", str(out), "--no-pdf"]).exit_code == 0
    assert CliRunner().invoke(app, ["export", str(ran / "demo.toml"), "--results",
                                    str(tmp_path / "results")]).exit_code == 0
    t = timings.read_csv(tmp_path / "results/demo/timings.csv").filter(pl.col("channel") == "x")
    medians = {}
    for (brand,), part in t.group_by("brand"):
        waited = part.select(pl.coalesce("ack_seconds", "cutoff_seconds")).to_series()
        medians[brand] = km.median(waited.to_numpy(), part["ack_seconds"].is_not_null())
    timed = sorted((m, b) for b, m in medians.items() if m is not None)
    rank = [b for _, b in timed].index("Fresh Lane") + 1
    html = (out / "index.html").read_text()
    assert f"{rank} of {len(medians)}" in html
    mine = t.filter(pl.col("brand") == "Fresh Lane")
    times = mine.select(pl.coalesce("ack_seconds", "cutoff_seconds")).to_series().to_numpy()
    low, _ = km.median_interval(times, mine["ack_seconds"].is_not_null().to_numpy())
    from mystery.durations import format_duration

    assert low is not None and f"{format_duration(medians['Fresh Lane'])} " \
        f"({format_duration(low)}–" in html


def test_a_misspelt_client_is_refused_with_the_closest_name(ran: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["pack", str(ran / "demo.toml"), "--client", "Fresh Lain",
                                      "--out", str(tmp_path / "pack")])
    assert result.exit_code == 1
    assert result.output.strip() == ("Error: --client 'Fresh Lain': no such brand here; did "
                                     "you mean 'Fresh Lane'?")
    assert not (tmp_path / "pack").exists()
    inside = CliRunner().invoke(app, ["pack", str(ran / "demo.toml"), "--client", "Fresh Lane",
                                      "--out", str(ran / "results" / "p"), "--results",
                                      str(ran / "results")])
    assert inside.exit_code == 1 and "never goes inside" in inside.output
    assert "Traceback" not in inside.output


def test_by_default_the_pack_goes_beside_the_results_never_inside(
    ran: Path, tmp_path: Path
) -> None:
    results = tmp_path / "results"
    result = CliRunner().invoke(app, ["pack", str(ran / "demo.toml"), "--client", "Fresh Lane",
                                      "--results", str(results), "--no-pdf"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "pack/fresh-lane/index.html").is_file()
    assert not results.exists()


def test_standing_on_hand_made_probes() -> None:
    """Client answered at 1, 2 and 3 min; peer A at 30 s ×3 (the best peer); peer B answered
    one probe of three (no median: ranked last). Rank 2 of 3, faster than half the peers."""
    rows = []
    for brand, acks in (("Client", [60.0, 120.0, 180.0]), ("A", [30.0, 30.0, 30.0]),
                        ("B", [600.0, None, None])):
        for i, ack in enumerate(acks):
            rows.append({"study": "s", "series": "s", "year": 2026, "brand": brand,
                         "sector": None, "country": None, "channel": "x", "question": f"q{i}",
                         "sent_at": None, "ack_seconds": ack, "resolution_seconds": None,
                         "status": "answered" if ack else "unanswered",
                         "cutoff_seconds": 86400.0})
    t = pl.DataFrame(rows, schema=timings.schema())
    (s,) = figures.standings(t, "Client")
    assert (s.rank, s.ranked, s.peers, s.faster_than) == (2, 3, 2, 0.5)
    assert (s.best_peer, s.best_peer_ack) == ("A", 30.0)
    assert s.ack.value == 120.0 and (s.ack.answered, s.ack.probes) == (3, 3)
    # Peers pooled: 30, 30, 30, 600, censored, censored → the median is 30 s.
    assert s.peer_ack.value == 30.0 and s.peer_ack.rate == 4 / 6
    assert s.resolution.value is None  # nothing resolved: unknown, not a number
    peers_only = figures.standings(t, "Client", peers=["B"])[0]
    assert (peers_only.rank, peers_only.best_peer, peers_only.faster_than) == (1, None, 1.0)


def test_a_series_pack_has_the_year_on_year_line(tmp_path: Path) -> None:
    for year in (2025, 2026):
        make_study(tmp_path, series="telco", year=year, brands=5, probes_per_brand=4, seed=3)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["pack", "telco", "--client", "Brand 002", "--out",
                                      str(out), "--results", str(tmp_path / "results"),
                                      "--no-pdf", "--colour", "#E07B00"])
    assert result.exit_code == 0, result.output
    assert sorted(_files(out)) == ["charts/ranking-x.png", "charts/ranking-x.svg",
                                   "charts/years.png", "charts/years.svg", "index.html"]
    html = (out / "index.html").read_text()
    assert "Brand 002 year on year" in html and "telco 2026" in html
    assert "#e07b00" in (out / "charts/years.svg").read_text()
    unknown = CliRunner().invoke(app, ["pack", "telecom", "--client", "Brand 002",
                                       "--results", str(tmp_path / "results")])
    assert unknown.exit_code == 1
    assert "'telecom' is neither a study file nor a series" in unknown.output
    assert "series there: telco" in unknown.output


def test_peers_narrow_the_comparison_and_a_misspelt_peer_is_refused(
    ran: Path, tmp_path: Path
) -> None:
    out = tmp_path / "pack"
    result = CliRunner().invoke(app, ["pack", str(ran / "demo.toml"), "--client", "Fresh Lane",
                                      "--peers", "Greenbasket", "--peers", "Corner Market",
                                      "--out", str(out), "--no-pdf"])
    assert result.exit_code == 0, result.output
    html = (out / "index.html").read_text()
    assert " of 3</td>" in html and "of 2 peers" in html
    wrong = CliRunner().invoke(app, ["pack", str(ran / "demo.toml"), "--client", "Fresh Lane",
                                     "--peers", "Greenbaskit", "--out", str(tmp_path / "x")])
    assert wrong.exit_code == 1
    assert wrong.output.strip() == ("Error: --peers 'Greenbaskit': no such brand here; did "
                                    "you mean 'Greenbasket'?")


def test_a_pack_that_cannot_be_printed_leaves_the_earlier_pack_whole(
    ran: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "pack"
    assert CliRunner().invoke(app, ["pack", str(ran / "demo.toml"), "--client", "Fresh Lane",
                                    "--out", str(out), "--no-pdf"]).exit_code == 0
    before = _files(out)
    monkeypatch.setenv("MYSTERY_CHROMIUM", str(tmp_path / "no-such-browser"))
    result = CliRunner().invoke(app, ["pack", str(ran / "demo.toml"), "--client", "Voltage",
                                      "--out", str(out)])
    assert result.exit_code == 1
    assert result.output.startswith("Error: cannot write pack.pdf: no Chromium found; install "
                                    "Chromium (Debian/Ubuntu: 'apt-get install chromium';")
    assert "Traceback" not in result.output
    assert _files(out) == before  # Fresh Lane's pack, as it was: nothing of Voltage's
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pack"]  # no staging folder left
