"""Publish regenerates results/ byte for byte, and --check names every stale or missing file."""

from __future__ import annotations

import csv
import hashlib
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mystery.cli import app
from mystery.errors import ImportFileError
from mystery.publish import check, publish
from tests.analysis.synthetic import make_study

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "studies").mkdir()
    shutil.copy(REPO / "studies" / "veeqo-uk-retail-2014.csv", tmp_path / "studies")
    shutil.copy(REPO / "studies" / "demo-brands.csv", tmp_path / "studies")  # not an import
    for year in (2025, 2026):
        make_study(tmp_path, series="uk-retail", year=year, brands=6, probes_per_brand=3, seed=5)
    return tmp_path


def _digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((root / "results").rglob("*")) if p.is_file()}


def test_publish_twice_gives_identical_bytes(project: Path) -> None:
    first = publish(project, workers=2)  # charts drawn in a pool of processes
    assert {o.state for o in first} == {"written"}
    before = _digests(project)
    second = publish(project)
    assert {o.state for o in second} == {"unchanged"}
    assert _digests(project) == before
    # Charts drawn one by one in this process are the same bytes as those drawn in a pool:
    # without manifests every chart is drawn again, and none comes out different.
    for manifest in (project / "results").rglob("charts.json"):
        manifest.unlink()
    again = publish(project, workers=1)
    assert {o.state for o in again if o.path.suffix in (".png", ".svg")} == {"unchanged"}
    assert _digests(project) == before
    names = set(before)
    assert {"results/uk-retail/yoy.csv", "results/uk-retail/yoy.md", "results/uk-retail/yoy.png",
            "results/uk-retail/yoy.svg", "results/uk-retail-2025/summary.md",
            "results/uk-retail-2026/ack_by_brand.png"} <= names
    svg = (project / "results/uk-retail/yoy.svg").read_text()
    assert "<dc:date>" not in svg and str(project) not in svg


def test_yoy_joins_published_2014_figures_with_later_studies(project: Path) -> None:
    publish(project)
    lines = (project / "results/uk-retail/yoy.csv").read_text().splitlines()
    assert lines[0] == (
        "series,year,channel,source,brands,brands_listed,listed,probes,answered,response_rate,"
        "fastest_brand,fastest_mean_minutes,slowest_brand,slowest_mean_minutes,median_minutes,"
        "median_ci_low_minutes,median_ci_high_minutes,within_1h,within_24h,"
        "logrank_p,panel_brands,panel_logrank_p,rate_change,rate_change_ci_low,"
        "rate_change_ci_high,published_fastest_brand,published_fastest_mean_minutes,"
        "published_slowest_brand,published_slowest_mean_minutes,published_mean_minutes,"
        "published_median_minutes")
    # 2014 lists 5 of the study's 10 brands: the year shows the study's published totals,
    # names no fastest or slowest of its own, keeps the study's extremes as published, and,
    # the first year, has nothing to be compared with.
    assert lines[1] == ("uk-retail,2014,x,published,10,5,some,30,29,0.966667" + "," * 16
                        + "B&Q,9.000000,The Co-operative,543.000000,,")
    assert [line.split(",")[1] for line in lines[1:]] == ["2014", "2025", "2026"]
    md = (project / "results/uk-retail/yoy.md").read_text()
    assert "| 2025 (synthetic) |" in md and "John Lewis" in md
    # The method note counts the study, not the file: 10 brands of which 5 are listed, and
    # says which year's cutoff is which.
    assert "by year: 2014: 30 probes, 10 brands (5 listed)" in md  # not "n = 2014": a year
    assert "cutoff not stated (2014); cutoff 7 d (2025, 2026)" in md


def test_editing_one_timing_makes_check_name_the_stale_files(project: Path) -> None:
    publish(project)
    timings = project / "results/uk-retail-2025/timings.csv"
    lines = timings.read_text().splitlines()
    cells = lines[1].split(",")
    cells[9] = "1.000" if cells[9] else cells[9]  # a faster acknowledgement
    cells[11] = "answered"
    cells[10] = ""
    lines[1] = ",".join(cells)
    timings.write_text("\n".join(lines) + "\n")
    (project / "results/uk-retail/sectors.png").unlink()
    stale = {str(o.path): o.state for o in check(project) if o.state != "unchanged"}
    assert stale["results/uk-retail-2025/summary.csv"] == "stale"
    assert stale["results/uk-retail/yoy.csv"] == "stale"
    assert stale["results/uk-retail/sectors.png"] == "missing"
    assert "results/uk-retail-2026/summary.csv" not in stale
    result = CliRunner().invoke(app, ["publish", "--check", "--root", str(project)])
    assert result.exit_code == 1
    assert "results/uk-retail-2025/summary.csv: stale" in result.output
    assert "results/uk-retail/sectors.png: missing" in result.output
    fixed = CliRunner().invoke(app, ["publish", "--root", str(project)])
    assert fixed.exit_code == 0, fixed.output
    again = CliRunner().invoke(app, ["publish", "--check", "--root", str(project)])
    assert again.exit_code == 0, again.output


def test_timings_without_study_json_are_refused(project: Path) -> None:
    (project / "results/uk-retail-2025/study.json").unlink()
    with pytest.raises(ImportFileError, match=r"study\.json: missing; it says whether the "
                       "study is synthetic"):
        publish(project)


def test_a_study_from_two_sources_is_refused(project: Path) -> None:
    shutil.copytree(project / "results/uk-retail-2025", project / "results/copy")
    with pytest.raises(ImportFileError, match="sits in results/copy/"):
        check(project)


@pytest.mark.parametrize("args", [["--check"], []], ids=["check", "publish"])
def test_a_root_with_nothing_to_publish_is_an_error_not_a_pass(tmp_path: Path,
                                                               args: list[str]) -> None:
    """A mistyped --root, or a run outside the project, must not pass a CI check vacuously."""
    (tmp_path / "studies").mkdir()
    shutil.copy(REPO / "studies" / "demo-brands.csv", tmp_path / "studies")  # not an import
    empty = CliRunner().invoke(app, ["publish", *args, "--root", str(tmp_path)])
    assert empty.exit_code == 1
    assert "nothing to publish: no results/<study>/timings.csv" in empty.output
    assert not (tmp_path / "results").exists()
    missing = CliRunner().invoke(app, ["publish", *args, "--root", str(tmp_path / "nope")])
    assert missing.exit_code == 1
    assert f"{tmp_path / 'nope'}: no such folder; pass --root" in missing.output
    assert "Traceback" not in empty.output + missing.output


def test_method_notes_say_which_channels_were_timed_by_hand(tmp_path: Path) -> None:

    from mystery.publish import publish
    from tests.analysis.synthetic import make_study

    for year in (2025, 2026):
        make_study(tmp_path, series="calls", year=year, brands=4, channels=("x", "phone"),
                   seed=2)
    publish(tmp_path, workers=1)
    notes = {p.relative_to(tmp_path).as_posix(): p.read_text(encoding="utf-8")
             for p in (tmp_path / "results").rglob("*.md")}
    assert notes and all("phone: timed by hand by the researcher, to the minute" in text
                         for text in notes.values()), notes.keys()
    yoy = (tmp_path / "results" / "calls" / "yoy.md").read_text(encoding="utf-8")
    assert "x: timed by hand" not in yoy


def test_publish_gives_the_same_bytes_whatever_the_process_hash_seed(tmp_path: Path) -> None:
    """Charts drawn on one machine are the same bytes in any process. Constrained layout over
    several panels landed a chart's clip rectangles a last bit apart under some hash seeds (2
    did, in the demo's sectors chart), which changed the SVG's clip ids. Each run draws every
    chart again (no manifests) and finds the bytes of the first; through the console script,
    as CI runs it."""
    import os
    import shutil
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    for folder in ("studies", "results"):
        shutil.copytree(repo / folder, tmp_path / folder)
    mystery = Path(sys.executable).with_name("mystery")
    for seed in ("0", "2", "4"):
        for manifest in (tmp_path / "results").rglob("charts.json"):
            manifest.unlink()
        done = subprocess.run([str(mystery), "publish", "--root", str(tmp_path)],
                              env={**os.environ, "PYTHONHASHSEED": seed},
                              capture_output=True, text=True)
        assert done.returncode == 0, (seed, done.stderr)
        if seed != "0":  # the first draws on this machine; the others must agree with it
            wrote = [line for line in done.stderr.splitlines() if line.startswith("wrote ")]
            assert wrote and all(line.endswith("/charts.json") for line in wrote), done.stderr


HOSTILE_BRANDS = ["<script>alert(1)</script>", '=HYPERLINK("http://evil.example","x")',
                  "@SUM(1+1)", "+1 Shop", "-Discount", "[win](http://evil.example) *now*"]


def test_hostile_names_in_an_imported_study_reach_no_table_or_chart_as_markup(
    project: Path,
) -> None:
    """Names from a published table are text wherever they land: Markdown shows them
    literally, CSV cells never start a spreadsheet formula, every SVG stays well-formed."""
    import csv as csvlib
    import xml.etree.ElementTree as ET

    source = project / "studies" / "veeqo-uk-retail-2014.csv"
    rows = list(csvlib.DictReader(source.read_text(encoding="utf-8").splitlines()))
    brand_rows = [row for row in rows if row["level"] != "study"]  # the study row names no brand
    while len(brand_rows) < len(HOSTILE_BRANDS):  # one brand row per hostile name
        brand_rows.append({**brand_rows[-1], "published_as": ""})
        rows.append(brand_rows[-1])
    for row, name in zip(brand_rows, HOSTILE_BRANDS, strict=True):
        row["brand"] = name
    with source.open("w", encoding="utf-8", newline="") as out:
        writer = csvlib.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    publish(project, workers=1)
    results = project / "results" / "uk-retail"
    markdown = "".join(p.read_text(encoding="utf-8") for p in results.glob("*.md"))
    assert "<script>" not in markdown and "&lt;script&gt;" in markdown
    assert "[win](http" not in markdown and "\\[win\\](http" in markdown  # no link: escaped
    for table in results.glob("*.csv"):
        for record in csvlib.reader(table.read_text(encoding="utf-8").splitlines()):
            assert not any(cell[:1] in "=+-@" and not cell[1:2].isdigit() for cell in record
                           if cell), (table.name, record)
    for svg in (project / "results").rglob("*.svg"):
        ET.parse(svg)  # well-formed XML, whatever the names


def test_a_control_character_in_an_imported_name_is_refused_at_import(tmp_path: Path) -> None:
    source = tmp_path / "bad.csv"
    text = (REPO / "studies" / "veeqo-uk-retail-2014.csv").read_text(encoding="utf-8")
    source.write_text(text.replace("B&Q", "\x1b]0;pwned\x07Shop", 1), encoding="utf-8")
    result = CliRunner().invoke(app, ["import", str(source), "--studies",
                                      str(tmp_path / "studies")])
    assert result.exit_code == 1, result.output
    assert "row 3, column brand" in result.output  # row 2 is the study's own row
    assert "contains a line break or control character" in result.output
    assert "\x1b" not in result.output  # the message shows it escaped (repr), never raw
    assert not (tmp_path / "studies").exists()


@pytest.mark.parametrize("stat", ["mean", "median"])
def test_column_names_say_the_brand_statistic(project: Path, stat: str) -> None:
    """fastest_minutes was a mean under one flag and a median under another: now the header
    says which."""
    result = CliRunner().invoke(app, ["publish", "--root", str(project), "--brand-stat", stat])
    assert result.exit_code == 0, result.output
    yoy = (project / "results/uk-retail/yoy.csv").read_text(encoding="utf-8").splitlines()[0]
    panel = (project / "results/uk-retail/panel.csv").read_text(encoding="utf-8").splitlines()[0]
    assert f"fastest_{stat}_minutes" in yoy.split(",")
    assert f"slowest_{stat}_minutes" in yoy.split(",")
    assert "fastest_minutes" not in yoy.split(",")
    assert {f"{stat}_minutes", f"change_{stat}_minutes"} <= set(panel.split(","))


def test_publish_tests_each_change_and_says_what_the_numbers_allow(tmp_path: Path) -> None:
    # 2025 asks 6 brands, 2026 only 4 of them, each on two channels: the years compare
    # different brands, the panel is the 4 present in both, and a brand counts once.
    (tmp_path / "studies").mkdir()
    make_study(tmp_path, series="s", year=2025, brands=6, channels=("x", "email"),
               probes_per_brand=8, seed=3)
    make_study(tmp_path, series="s", year=2026, brands=4, channels=("x", "email"),
               probes_per_brand=8, seed=4)
    result = CliRunner().invoke(app, ["publish", "--root", str(tmp_path)])
    assert result.exit_code == 0, result.output
    out = tmp_path / "results" / "s"
    changes = (out / "changes.csv").read_text(encoding="utf-8").splitlines()
    assert changes[0].startswith("series,channel,from_year,to_year,scope,brands_from,brands_to")
    rows = [line.split(",") for line in changes[1:]]
    assert [(r[1], r[4], r[5], r[6]) for r in rows] == [
        ("email", "all probes", "6", "4"), ("email", "panel", "4", "4"),
        ("x", "all probes", "6", "4"), ("x", "panel", "4", "4")]
    assert all(r[11] for r in rows)  # a log-rank p on every row: both years have probe times
    md = (out / "yoy.md").read_text(encoding="utf-8")
    assert "## Change since the previous year" in md
    assert "x, 2025 → 2026, all probes (6 then 4 brands):" in md
    assert "different brands each year: compare the panel" in md
    assert "Newcombe's hybrid score interval" in md
    # Brands counted once across channels, and the median convention in the method note.
    assert "2025 (synthetic): 96 probes, 6 brands; 2026 (synthetic): 64 probes, 4 brands" in md
    assert "the lower middle time, never an average" in md
    # Every brand is on both channels: the channel table may say it compares the same brands.
    assert "so that channels are compared on the same brands." in md
    summary = (tmp_path / "results/s-2026/summary.md").read_text(encoding="utf-8")
    assert "n = 64 probes to 4 brands" in summary and "never an average" in summary
    yoy = (out / "yoy.csv").read_text(encoding="utf-8").splitlines()
    header = yoy[0].split(",")
    later = dict(zip(header, yoy[-1].split(","), strict=True))
    assert later["panel_brands"] == "4" and later["logrank_p"] and later["panel_logrank_p"]
    assert float(later["rate_change_ci_low"]) <= float(later["rate_change"]) \
        <= float(later["rate_change_ci_high"])


def test_the_panel_rows_of_changes_describe_the_panel_probes_only(tmp_path: Path) -> None:
    import numpy as np
    import polars as pl
    from scipy import stats

    (tmp_path / "studies").mkdir()
    make_study(tmp_path, series="s", year=2025, brands=8, probes_per_brand=6, seed=8)
    make_study(tmp_path, series="s", year=2026, brands=3, probes_per_brand=6, seed=9)
    assert CliRunner().invoke(app, ["publish", "--root", str(tmp_path)]).exit_code == 0
    with (tmp_path / "results/s/changes.csv").open(encoding="utf-8") as handle:
        rows = {r["scope"]: r for r in csv.DictReader(handle)}
    panel_brands = [f"Brand {i:03d}" for i in range(3)]
    first = pl.read_csv(tmp_path / "results/s-2025/timings.csv")
    part = first.filter(pl.col("brand").is_in(panel_brands))
    answered = (part["status"] == "answered").to_numpy()
    times = np.where(answered, part["ack_seconds"].fill_null(0).to_numpy(),
                     part["cutoff_seconds"].to_numpy())
    sf = stats.ecdf(stats.CensoredData.right_censored(times, ~answered)).sf
    median = next((float(q) for q, p in zip(sf.quantiles, sf.probabilities, strict=True)
                   if p <= 0.5), None)
    assert rows["panel"]["probes_from"] == "18" and rows["all probes"]["probes_from"] == "48"
    expected = "" if median is None else f"{median / 60:.6f}"
    assert rows["panel"]["median_from_minutes"] == expected


def test_the_channel_table_says_when_its_brands_differ_between_channels() -> None:
    # The demo asks Threadworks on x and Mastodon, Voltage on x and Bluesky.
    md = (REPO / "results/demo/yoy.md").read_text(encoding="utf-8")
    assert "not compared on exactly the same brands" in md
    assert "compared on the same brands." not in md
