"""``mystery plan STUDY --power`` / ``--detect``: what a researcher planning a wave is told."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mystery.cli import app
from mystery.timings import schema
from tests.studybuilder import write_study

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def in_repo(monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run from the project folder, where results/ holds the series' earlier years."""
    monkeypatch.chdir(REPO)
    return REPO


def test_a_uk_retail_wave_is_simulated_from_the_year_before(in_repo: Path) -> None:
    result = CliRunner().invoke(app, ["plan", "studies/uk-retail-2026.toml", "--power",
                                      "--simulations", "300", "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    earlier = schema.read_csv(in_repo / "results" / "uk-retail-2025" / "timings.csv")
    valid = earlier.filter(earlier["status"] != "excluded").height
    assert data["simulations"] == 300 and data["alpha"] == 0.05
    assert data["target_power"] == 0.8 and data["test"] == "log-rank, two-sided"
    rows = data["detectable"]
    assert [(r["channel"], r["direction"]) for r in rows] == [("x", "faster"), ("x", "slower")]
    for row in rows:
        assert "uk-retail-2025 (2025)" in row["source"]
        assert row["probes_earlier"] == valid and row["probes_plan"] == 30
        assert row["simulations"] == 300 and 0 < row["power_se"] < 0.05
    faster, slower = rows
    # 30 probes against 30, a sixth never answering: even a hundredfold speed-up is barely
    # seen; the output says "not detected" (null) rather than a number it did not find.
    if faster["change_percent"] is None:
        assert faster["factor"] is None and faster["power"] < 0.8
    else:
        assert faster["change_percent"] < -90 and faster["power"] >= 0.8
    assert slower["change_percent"] > 100 and slower["power"] >= 0.8
    assert slower["median_at_change_minutes"] == pytest.approx(
        slower["median_minutes"] * slower["factor"], rel=1e-3)
    said = " ".join(data["assumptions"])
    for words in ("multiplied by one factor", "censored at the cutoff", "log-rank",
                  "300 simulated", "Monte Carlo standard error", "uk-retail-2025"):
        assert words in said


def test_the_demo_study_falls_back_on_its_sandbox_profiles_every_channel(
    in_repo: Path,
) -> None:
    result = CliRunner().invoke(app, ["plan", "studies/demo.toml", "--power",
                                      "--simulations", "200"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "the smallest change in median acknowledgement time" in out
    for channel in ("x", "mastodon", "bluesky"):
        assert f"{channel}: both years simulated with this plan's" in out
    assert "sandbox profiles of its 20 brands" in out
    assert "sandbox profiles of its 1 brand (" in out  # counted right: one brand, not "1 brands"
    assert "faster" in out and "slower" in out and "±" in out
    assert "200 simulated pairs of years" in out and "seeded by schedule.seed (2026)" in out


def test_detect_says_how_many_probes_per_brand_and_is_the_same_every_time(
    in_repo: Path,
) -> None:
    args = ["plan", "studies/uk-retail-2025.toml", "--detect", "40%", "--simulations", "200",
            "--format", "csv"]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    rows = list(csv.DictReader(io.StringIO(first.stdout)))
    assert [r["direction"] for r in rows] == ["faster", "slower"]
    for row in rows:
        assert row["change_percent"] in ("-40.0", "40.0")
        k = int(row["probes_per_brand"])
        assert k > 3  # this plan's 3 per brand are too few for 40 %
        assert int(row["probes_plan"]) == 10 * k == int(row["probes_earlier"])
        assert float(row["power"]) >= 0.8 > float(row["plan_power"])
    assert "Change: every acknowledgement time" in first.stderr
    # A week of send windows with a day between a brand's probes holds no such count.
    assert "This schedule holds at most 7 probes per brand" in first.stderr
    assert f"so {rows[0]['probes_per_brand']} and {rows[1]['probes_per_brand']} do not fit" in (
        first.stderr)
    again = CliRunner().invoke(app, args)
    assert again.stdout == first.stdout


def test_detect_names_the_limit_when_the_earlier_year_is_too_small(in_repo: Path) -> None:
    result = CliRunner().invoke(app, ["plan", "studies/uk-retail-2026.toml", "--detect", "20%",
                                      "--simulations", "200"])
    assert result.exit_code == 0, result.output
    assert "more than 1,000" in result.stdout
    assert "the earlier year's 30 probes limit the comparison" in result.stdout


@pytest.mark.parametrize(("value", "words"), [
    ("abc", "is not a change such as 20%"),
    ("20", "has no % sign"),
    ("0.2", "has no % sign"),
    ("-20%", "has a sign"),
    ("+20%", "has a sign"),
    ("0%", "is outside 0%–100%"),
    ("100%", "is outside 0%–100%"),
    ("150%", "is outside 0%–100%"),
    ("", "is not a change such as 20%"),
])
def test_a_bad_detect_value_is_a_usage_error_naming_it(value: str, words: str) -> None:
    result = CliRunner().invoke(app, ["plan", str(REPO / "studies" / "demo.toml"),
                                      "--detect", value])
    assert result.exit_code == 2
    assert "--detect" in result.stderr and words in result.stderr
    assert "Traceback" not in result.output and result.stdout == ""


def test_power_and_cost_are_one_or_the_other() -> None:
    result = CliRunner().invoke(app, ["plan", str(REPO / "studies" / "demo.toml"), "--power",
                                      "--cost"])
    assert result.exit_code == 2 and "choose one of --cost and --power" in result.stderr


def test_too_few_simulations_are_refused_and_they_need_power() -> None:
    result = CliRunner().invoke(app, ["plan", str(REPO / "studies" / "demo.toml"), "--power",
                                      "--simulations", "10"])
    assert result.exit_code == 2 and "--simulations" in result.stderr
    alone = CliRunner().invoke(app, ["plan", str(REPO / "studies" / "demo.toml"),
                                     "--simulations", "500"])
    assert alone.exit_code == 2 and "add --power" in alone.stderr and alone.stdout == ""


def test_a_real_channel_with_no_earlier_year_has_nothing_to_simulate_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    study = write_study(tmp_path, channels={
        "x": {"account": "me", "endpoint": "https://api.x.com"}})
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["plan", str(study), "--power", "--simulations", "200"])
    assert result.exit_code == 1
    assert "no earlier year of series 'study' has timings on x" in result.stderr
    assert "mystery export" in result.stderr and "Traceback" not in result.output


def test_a_long_simulation_shows_its_progress_on_a_terminal_only(in_repo: Path) -> None:
    from tests.terminal import terminal

    # Searches up to thousands of probes a year: several seconds, even on a quiet machine.
    args = ["plan", "studies/uk-retail-2025.toml", "--detect", "20%", "--simulations", "400"]
    with terminal(args, in_repo) as screen:
        screen.expect("400 simulated studies per point")  # the bar, after its first second
        assert screen.finish() == 0
        assert "probes per brand to detect a change of 20%" in screen.screen()
    piped = CliRunner().invoke(app, ["plan", "studies/demo.toml", "--power",
                                     "--simulations", "200"])
    assert piped.exit_code == 0 and "simulated studies per point" not in piped.output
