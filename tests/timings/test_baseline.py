"""What a plan's power is simulated from: the series' latest earlier year, as it was measured."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from mystery.errors import MysteryError
from mystery.study.load import load_study
from mystery.study.plan import make_plan
from mystery.timings import schema
from mystery.timings.baseline import baselines
from mystery.timings.studyinfo import StudyInfo
from tests.studybuilder import write_study


def _wave(root: Path, name: str, year: int, probes: list[tuple[str, float | None]],
          series: str = "study") -> None:
    """results/<name>/ with one probe per (status, ack seconds) on x."""
    rows = [{
        "study": name, "series": series, "year": year, "brand": f"B{i}", "sector": None,
        "country": None, "channel": "x", "question": "q",
        "sent_at": datetime(year, 3, 2, 9, i, tzinfo=UTC),
        "ack_seconds": ack, "resolution_seconds": None, "status": status,
        "cutoff_seconds": 172800.0,
    } for i, (status, ack) in enumerate(probes)]
    folder = root / "results" / name
    schema.write_csv(schema.frame(rows), folder / "timings.csv")
    StudyInfo(name=name, series=series, year=year, cutoff_seconds=172800.0).write(folder)


def test_the_latest_earlier_year_is_drawn_from_as_measured(tmp_path: Path) -> None:
    _wave(tmp_path, "study-2024", 2024, [("answered", 60.0), ("unanswered", None),
                                          ("answered", 600.0), ("excluded", None)])
    _wave(tmp_path, "study-2023", 2023, [("answered", 5.0)] * 9)
    _wave(tmp_path, "other-2025", 2025, [("answered", 1.0)] * 9, series="other")
    _wave(tmp_path, "study", 2026, [("answered", 2.0)] * 9)  # the study's own year: not earlier
    study = load_study(write_study(tmp_path)).study  # "study", 2026
    [found] = baselines(study, make_plan(study), root=tmp_path)
    assert found.channel == "x" and found.earlier == "study-2024"
    assert "study-2024 (2024): its 3 probes on x" in found.source
    assert found.before == 3  # the excluded probe is no probe
    assert sorted(zip(found.times.tolist(), found.answered.tolist(), strict=True)) == [
        (60.0, True), (600.0, True), (172800.0, False)]  # unanswered: censored at its cutoff
    assert found.sizes(found.per_brand) == (3, found.brands * found.per_brand)


def test_with_no_earlier_year_a_sandbox_channel_uses_each_brands_profile(
    tmp_path: Path,
) -> None:
    study = load_study(write_study(tmp_path)).study
    [found] = baselines(study, make_plan(study), root=tmp_path)
    assert found.earlier is None and found.before is None
    assert "sandbox profiles of its 2 brands" in found.source
    assert found.times.size == 2 * 1000 and found.answered.all()
    assert np.all(found.times <= study.cutoff.total_seconds())


@pytest.mark.parametrize("channels", [
    {"x": {"account": "me", "endpoint": "https://api.x.com"}},
    {"phone": {"account": "me"}},  # hand-logged: the sandbox has no brands answering calls
])
def test_a_channel_the_sandbox_does_not_simulate_needs_an_earlier_year(
    tmp_path: Path, channels: dict[str, dict[str, str]],
) -> None:
    brands = [{"name": name, "handles": {c: name for c in channels if c == "x"}}
              for name in ("Acme", "Globex")]
    study = load_study(write_study(tmp_path, channels=channels, brands=brands)).study
    with pytest.raises(MysteryError, match="nothing to simulate from"):
        baselines(study, make_plan(study), root=tmp_path)


def test_probe_rows_of_a_published_study_serve_as_the_earlier_year(tmp_path: Path) -> None:
    (tmp_path / "studies").mkdir()
    (tmp_path / "studies" / "old.csv").write_text(
        "study,series,year,brand,channel,responded,response_minutes,sent_at\n"
        "old-2014,study,2014,Acme,twitter,true,9,2014-05-12T09:30:00Z\n"
        "old-2014,study,2014,Globex,twitter,true,90,2014-05-12T10:30:00Z\n"
        "old-2014,study,2014,Initech,twitter,false,,2014-05-12T11:30:00Z\n", encoding="utf-8")
    study = load_study(write_study(tmp_path)).study
    [found] = baselines(study, make_plan(study), root=tmp_path)
    assert found.earlier == "old-2014" and found.before == 3
    assert "1 unanswered with no published cutoff, taken to have waited" in found.source
    # No cutoff was published: the unanswered probe waits as long as this study's probes.
    assert sorted(zip(found.times.tolist(), found.answered.tolist(), strict=True)) == [
        (540.0, True), (5400.0, True), (study.cutoff.total_seconds(), False)]
