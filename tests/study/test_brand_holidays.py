"""A brand can keep its own public-holiday calendar (the brands CSV's ``holidays`` column):
no probe to it on its holidays, its business hours closed on them, the method note naming
it, and an unknown code refused with the valid form."""

from __future__ import annotations

import csv as csvlib
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from typer.testing import CliRunner

from mystery.cli import app
from mystery.study.model import Study
from mystery.study.plan import make_plan
from tests.study.test_study import CSV, GOOD_WITH_CSV

EASTER_MONDAY = date(2026, 4, 6)  # a bank holiday in England, not in Scotland
LONDON = ZoneInfo("Europe/London")


def _study(calendars: dict[str, str], holidays: str | None = "GB-ENG") -> Study:
    data: dict[str, Any] = {
        "name": "easter", "year": 2026, "timezone": "Europe/London", "cutoff": "1d",
        "channels": {"x": {"account": "researcher"}},
        "questions": [{"id": "q", "text": "Hi {brand}, are you open today?"}],
        "schedule": {"start": "2026-04-06", "end": "2026-04-07", "probes_per_brand": 1,
                     "min_gap": "1h", "seed": 1},
        "brands": [{"name": f"Brand {n}", "handles": {"x": f"brand{n}"},
                    **({"holidays": calendars[f"Brand {n}"]} if f"Brand {n}" in calendars
                       else {})} for n in range(16)],
    }
    if holidays:
        data["holidays"] = holidays
    return Study.model_validate(data)


def _days(study: Study) -> dict[str, date]:
    return {p.brand: p.planned_at.astimezone(LONDON).date() for p in make_plan(study)}


def test_a_brand_on_its_own_calendar_is_asked_on_its_working_days() -> None:
    scottish = {f"Brand {n}": "GB-SCT" for n in range(8)}
    days = _days(_study(scottish))
    english = {b: d for b, d in days.items() if b not in scottish}
    assert len(days) == 16
    assert EASTER_MONDAY not in english.values()  # the study's calendar: England
    # Easter Monday is a working day in Scotland: the Scottish brands may be asked then.
    assert EASTER_MONDAY in [days[b] for b in scottish]
    # A brand's calendar moves only its own probes.
    assert english == {b: d for b, d in _days(_study({})).items() if b in english}


def test_a_brand_calendar_applies_without_a_study_calendar() -> None:
    english = {f"Brand {n}": "GB-ENG" for n in range(8)}
    days = _days(_study(english, holidays=None))
    assert EASTER_MONDAY not in [days[b] for b in english]
    assert EASTER_MONDAY in [d for b, d in days.items() if b not in english]


def test_an_unknown_brand_calendar_is_refused_with_the_valid_form(tmp_path: Path) -> None:
    (tmp_path / "study.toml").write_text(GOOD_WITH_CSV, encoding="utf-8")
    lines = CSV.splitlines()
    bad = [lines[0] + ",holidays", lines[1] + ",GB-XYZ", lines[2] + ","]
    (tmp_path / "brands.csv").write_text("\n".join(bad) + "\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["validate", str(tmp_path / "study.toml")])
    assert result.exit_code == 1, result.output
    assert "row 2" in result.output and "holidays" in result.output
    assert "'GB' has no subdivision 'XYZ'; use one of GB-ENG" in result.output
    assert "Traceback" not in result.output


def test_business_hours_close_on_a_brand_s_own_holidays_and_the_note_says_so(
    tmp_path: Path,
) -> None:
    """Thursday 2 April 2026, 16:00 in London, answered Monday 6 April 16:00: sixteen working
    hours for a brand with no calendar, one for a brand keeping England's (Good Friday and
    Easter Monday closed)."""
    from mystery.analysis.report import write_report
    from mystery.timings import schema as timings
    from mystery.timings.schema import TimingRow
    from mystery.timings.studyinfo import StudyInfo

    sent = datetime(2026, 4, 2, 15, tzinfo=UTC)
    rows = [TimingRow(study="easter", series="easter", year=2026, brand=brand, sector=None,
                      country=None, channel="x", question="q", sent_at=sent,
                      ack_seconds=4 * 86400.0, resolution_seconds=4 * 86400.0,
                      status="answered", cutoff_seconds=7 * 86400.0)
            for brand in ("Acme", "Other")]
    info = StudyInfo(name="easter", series="easter", year=2026, timezone="Europe/London",
                     brand_holidays={"Acme": "GB-ENG"})
    write_report(timings.frame(rows), tmp_path, info)
    summary = {r["brand"]: float(r["median_ack_business_minutes"]) for r in
               csvlib.DictReader((tmp_path / "summary.csv").read_text().splitlines())}
    assert summary == {"Acme": 60.0, "Other": 16 * 60.0}
    note = (tmp_path / "summary.md").read_text(encoding="utf-8")
    assert "own holiday calendar: Acme (GB-ENG); no public holidays for the others" in note
    info.write(tmp_path)  # study.json carries the calendars, so publish needs no study file
    assert StudyInfo.read(tmp_path).brand_holidays == {"Acme": "GB-ENG"}
