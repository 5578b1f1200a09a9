"""``mystery export`` and ``mystery report`` against a store filled by a sandbox run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mystery.cli import app
from mystery.timings import schema as timings

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("demo")
    for name in ("demo.toml", "demo-brands.csv"):
        shutil.copy(REPO / "studies" / name, folder / name)
    result = CliRunner().invoke(app, ["run", str(folder / "demo.toml"), "--quiet", "--no-report"])
    assert result.exit_code == 0, result.output
    return folder


def test_export_writes_timings_and_study_json_only(ran: Path, tmp_path: Path) -> None:
    out = tmp_path / "results"
    result = CliRunner().invoke(app, ["export", str(ran / "demo.toml"), "--results", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (out / "demo").iterdir()) == ["study.json", "timings.csv"]
    df = timings.read_csv(out / "demo" / "timings.csv")
    assert df.height == 66 and set(df["status"].unique()) <= {"answered", "unanswered"}
    info = json.loads((out / "demo" / "study.json").read_text())
    assert (info["synthetic"], info["timezone"], info["series"]) == (True, "Europe/London", "demo")
    text = (out / "demo" / "timings.csv").read_text()
    assert "mystery_researcher" not in text  # no account names, no reply text


def test_report_prints_the_table_and_writes_its_files(ran: Path, tmp_path: Path) -> None:
    out = tmp_path / "results"
    result = CliRunner().invoke(app, ["report", str(ran / "demo.toml"), "--results", str(out),
                                      "--highlight", "Fresh Lane"])
    assert result.exit_code == 0, result.output
    assert "Fresh Lane" in result.output and "demo: per brand" in result.output
    for name in ("summary.csv", "summary.md", "ack_by_brand.png", "ack_by_brand.svg"):
        assert (out / "demo" / name).exists()
        assert f"wrote {out / 'demo' / name}" in result.output.replace("\n", "")
    header = (out / "demo" / "summary.csv").read_text().splitlines()[0]
    assert header.startswith("study,channel,brand,sector,probes,acknowledged,unanswered,")


def test_export_without_a_store_says_how_to_fix_it(tmp_path: Path) -> None:
    shutil.copy(REPO / "studies" / "demo.toml", tmp_path / "demo.toml")
    shutil.copy(REPO / "studies" / "demo-brands.csv", tmp_path / "demo-brands.csv")
    result = CliRunner().invoke(app, ["export", str(tmp_path / "demo.toml")])
    assert result.exit_code == 1
    assert "no store at" in result.output and "Traceback" not in result.output


def test_highlight_colours_a_brand_on_every_channel_and_a_misspelt_one_is_refused(
    ran: Path, tmp_path: Path
) -> None:
    """In a multi-channel study the bars are labelled 'Brand (channel)'; --highlight names the
    brand, and its bar is drawn in the client colour, the others grey."""
    from mystery.analysis.charts import HIGHLIGHT, PEER

    out = tmp_path / "results"
    result = CliRunner().invoke(app, ["report", str(ran / "demo.toml"), "--results", str(out),
                                      "--highlight", "Voltage"])
    assert result.exit_code == 0, result.output
    svg = (out / "demo" / "ack_by_brand.svg").read_text()
    assert "Voltage (bluesky)" in svg and "Voltage (x)" in svg  # the brand on two channels
    assert svg.count(f"fill: {HIGHLIGHT}") >= 2 and f"fill: {PEER}" in svg

    wrong = CliRunner().invoke(app, ["report", str(ran / "demo.toml"), "--results",
                                     str(tmp_path / "other"), "--highlight", "Fresh Lain"])
    assert wrong.exit_code == 1
    assert wrong.output.strip() == ("Error: --highlight 'Fresh Lain': no such brand here; did "
                                    "you mean 'Fresh Lane'?")
    assert not (tmp_path / "other").exists()  # refused before anything is written


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def test_a_report_that_cannot_write_one_file_changes_none(ran: Path, tmp_path: Path) -> None:
    """Outputs appear whole or not at all: with a folder where summary.md should be, the report
    has not already replaced timings.csv and study.json when it fails; one message, exit 1."""
    out = tmp_path / "results"
    assert CliRunner().invoke(app, ["report", str(ran / "demo.toml"), "--results",
                                    str(out)]).exit_code == 0
    folder = out / "demo"
    (folder / "timings.csv").write_text("an older export\n")  # the report would replace it
    (folder / "summary.md").unlink()
    (folder / "summary.md").mkdir()
    before = _files(out)
    result = CliRunner().invoke(app, ["report", str(ran / "demo.toml"), "--results", str(out)])
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: cannot write {folder / 'summary.md'}: Is a "
                                    "directory; nothing under results/ was changed")
    assert "Traceback" not in result.output
    assert _files(out) == before and sorted(p.name for p in out.iterdir()) == ["demo"]


def test_publish_that_cannot_write_one_file_changes_none(tmp_path: Path) -> None:
    for folder in ("studies", "results"):
        shutil.copytree(REPO / folder, tmp_path / folder)
    timings_csv = tmp_path / "results" / "demo" / "timings.csv"
    lines = timings_csv.read_text().splitlines(keepends=True)
    timings_csv.write_text("".join(lines[:-1]))  # one probe fewer: every demo table changes
    yoy = tmp_path / "results" / "demo" / "yoy.md"
    yoy.unlink()
    yoy.mkdir()  # a folder where one of the outputs should go
    before = _files(tmp_path / "results")
    result = CliRunner().invoke(app, ["publish", "--root", str(tmp_path)])
    assert result.exit_code == 1
    assert "Error: cannot write" in result.output and "nothing under results/" in result.output
    assert "Traceback" not in result.output
    assert _files(tmp_path / "results") == before


def test_report_and_plan_write_rows_for_scripts_whole(ran: Path, tmp_path: Path) -> None:
    """--format json is valid JSON, csv has a header and a row per probe, and a table sent to
    a pipe is never cut to 80 columns."""
    study = str(ran / "demo.toml")
    out = str(tmp_path / "results")
    as_json = CliRunner().invoke(app, ["report", study, "--results", out, "--format", "json"])
    assert as_json.exit_code == 0, as_json.output
    rows = json.loads(as_json.stdout)
    assert len(rows) == 22 and {r["channel"] for r in rows} == {"x", "mastodon", "bluesky"}
    assert all(isinstance(r["probes"], int) for r in rows)
    assert any(r["median_ack_minutes"] is None for r in rows)  # unknown is null, not a number

    plan = CliRunner().invoke(app, ["plan", study, "--format", "csv"])
    lines = plan.stdout.splitlines()
    assert lines[0] == "probe,planned_at_utc,planned_at_local,brand,channel,question,text"
    assert len(lines) == 1 + 66
    assert CliRunner().invoke(app, ["plan", study, "--csv"]).stdout == plan.stdout  # alias

    narrow = {"COLUMNS": "40"}  # a terminal this narrow would cut it; a pipe must not
    table = CliRunner().invoke(app, ["report", study, "--results", out], env=narrow)
    assert "…" not in table.stdout and "Northern Tailor" in table.stdout
