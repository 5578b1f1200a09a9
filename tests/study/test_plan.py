"""The probe plan: deterministic, counterbalanced, inside the send windows, gaps kept, spread
over the day, and honest about schedules that cannot work."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mystery.errors import StudyError
from mystery.hours import next_open
from mystery.study.load import load_study
from mystery.study.model import Study
from mystery.study.plan import PlannedProbe, make_plan

DEMO = Path(__file__).resolve().parents[2] / "studies" / "demo.toml"


def make_study(
    brands: int = 6,
    questions: int = 3,
    per_brand: int = 3,
    start: str = "2026-03-02",
    end: str = "2026-03-13",
    min_gap: str = "1d",
    channels: tuple[str, ...] = ("x",),
    windows: list[dict[str, str]] | None = None,
    timezone: str = "Europe/London",
    seed: int = 1,
) -> Study:
    schedule: dict[str, Any] = {
        "start": start,
        "end": end,
        "probes_per_brand": per_brand,
        "min_gap": min_gap,
        "seed": seed,
    }
    if windows is not None:
        schedule["windows"] = windows
    return Study.model_validate(
        {
            "name": "t",
            "year": 2026,
            "timezone": timezone,
            "channels": {c: {"account": "researcher"} for c in channels},
            "questions": [
                {"id": f"q{i}", "text": f"Hi {{brand}}, question {i}?"} for i in range(questions)
            ],
            "schedule": schedule,
            "brands": [
                {"name": f"Brand {i:03d}", "handles": {c: f"brand{i}" for c in channels}}
                for i in range(brands)
            ],
        }
    )


def by_brand(plan: list[PlannedProbe]) -> dict[str, list[PlannedProbe]]:
    grouped: dict[str, list[PlannedProbe]] = defaultdict(list)
    for probe in plan:
        grouped[probe.brand].append(probe)
    return grouped


def assert_inside_windows(plan: list[PlannedProbe], study: Study) -> None:
    """Every probe at a local time inside a window for its local weekday, within the dates."""
    schedule = study.schedule
    for probe in plan:
        local = probe.planned_at.astimezone(study.zone)
        assert schedule.start <= local.date() <= schedule.end, probe
        assert any(
            local.weekday() in w.weekdays
            and w.start <= local.time()
            and (local.time() < w.end or w.end == time(23, 59, 59))  # "24:00"
            for w in schedule.windows
        ), (probe, local)


def assert_gaps_kept(plan: list[PlannedProbe], min_gap: timedelta) -> None:
    for name, probes in by_brand(plan).items():
        times = sorted(p.planned_at for p in probes)
        for earlier, later in itertools.pairwise(times):
            assert later - earlier >= min_gap, (name, earlier, later)


def greedy_capacity(study: Study) -> int:
    """How many probes min_gap apart fit, placing each as early as it can (optimal on a line)."""
    schedule, zone = study.schedule, study.zone
    first = datetime.combine(schedule.start, datetime.min.time(), zone)
    after = datetime.combine(schedule.end + timedelta(days=1), datetime.min.time(), zone)
    count, t = 0, next_open(first, schedule.windows, zone)
    while t < after:
        count += 1
        t = next_open(t + max(schedule.min_gap, timedelta(seconds=1)), schedule.windows, zone)
    return count


# --- the demo study ------------------------------------------------------------------------------


def test_the_demo_study_plans_66_probes_in_order() -> None:
    study = load_study(DEMO).study
    plan = make_plan(study)
    assert len(plan) == 66  # 20 brands x 3 probes on x, one brand each on mastodon and bluesky
    assert [p.id for p in plan] == [f"p{n:04d}" for n in range(1, 67)]
    assert plan == sorted(plan, key=lambda p: (p.planned_at, p.id))
    assert plan == sorted(plan, key=lambda p: (p.planned_at, p.brand, p.channel))
    for probe in plan:
        assert probe.planned_at.tzinfo is not None and probe.planned_at.utcoffset() == timedelta(0)
        assert probe.planned_at.microsecond == 0
        assert probe.channel in study.brand(probe.brand).handles
        assert probe.text == study.question(probe.question).render(probe.brand)
    assert Counter(p.brand for p in plan) == {
        b.name: 3 * len(b.handles) for b in study.brands
    }
    assert_inside_windows(plan, study)
    assert_gaps_kept(plan, study.schedule.min_gap)


def test_the_demo_brands_are_not_asked_at_the_same_hour_every_time() -> None:
    study = load_study(DEMO).study
    for seed in (study.schedule.seed, 0, 1, 2, 3):
        reseeded = study.model_copy(
            update={"schedule": study.schedule.model_copy(update={"seed": seed})}
        )
        for name, probes in by_brand(make_plan(reseeded)).items():
            hours = {p.planned_at.astimezone(study.zone).hour for p in probes}
            assert len(hours) > 1, (seed, name, hours)


# --- determinism ---------------------------------------------------------------------------------


def test_same_seed_same_plan_and_another_seed_another_plan() -> None:
    study = load_study(DEMO).study
    assert make_plan(study) == make_plan(study)
    other = study.model_copy(update={"schedule": study.schedule.model_copy(update={"seed": 99})})
    assert [p.planned_at for p in make_plan(other)] != [p.planned_at for p in make_plan(study)]


def test_the_plan_does_not_depend_on_hash_randomisation() -> None:
    script = (
        "import json, sys; from mystery.study.load import load_study;"
        "from mystery.study.plan import make_plan;"
        "plan = make_plan(load_study(sys.argv[1]).study);"
        "print(json.dumps([[p.id, p.brand, p.channel, p.question, p.planned_at.isoformat()]"
        " for p in plan]))"
    )
    here = [
        [p.id, p.brand, p.channel, p.question, p.planned_at.isoformat()]
        for p in make_plan(load_study(DEMO).study)
    ]
    env = {**os.environ, "PYTHONHASHSEED": "4242"}
    out = subprocess.run(
        [sys.executable, "-c", script, str(DEMO)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(out.stdout) == here


def test_adding_a_brand_does_not_move_the_others() -> None:
    small, large = make_study(brands=5), make_study(brands=6)
    times = {(p.brand, p.planned_at) for p in make_plan(small)}
    assert times <= {(p.brand, p.planned_at) for p in make_plan(large)}


# --- counterbalancing ----------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    brands=st.integers(1, 11),
    questions=st.integers(1, 5),
    per_brand=st.integers(1, 7),
    channels=st.sampled_from([("x",), ("x", "mastodon"), ("x", "phone", "email")]),
)
def test_questions_are_counterbalanced(
    brands: int, questions: int, per_brand: int, channels: tuple[str, ...]
) -> None:
    study = make_study(
        brands=brands,
        questions=questions,
        per_brand=per_brand,
        channels=channels,
        start="2026-03-02",
        end="2026-04-30",
        min_gap="2h",
        windows=[{"days": "daily", "start": "08:00", "end": "20:00"}],
    )
    plan = make_plan(study)
    assert len(plan) == brands * per_brand * len(channels)
    ids = [q.id for q in study.questions]

    def spread(probes: list[PlannedProbe]) -> int:
        counts = Counter(p.question for p in probes)
        return max(counts[i] for i in ids) - min(counts[i] for i in ids)

    assert spread(plan) <= 1
    for channel in channels:
        on_channel = [p for p in plan if p.channel == channel]
        assert spread(on_channel) <= 1, channel
        sequences = {
            b.name: [p.question for p in on_channel if p.brand == b.name] for b in study.brands
        }
        for sequence in sequences.values():
            assert len(sequence) == per_brand
            # Every question once before any is repeated.
            for start in range(0, per_brand, questions):
                block = sequence[start : start + questions]
                assert len(set(block)) == len(block), sequence
        # Latin-square rotation: each brand starts one question further on than the one before.
        firsts = [ids.index(sequences[b.name][0]) for b in study.brands]
        assert all((b - a) % questions == 1 % questions for a, b in itertools.pairwise(firsts))


def test_demo_rotation_is_a_latin_square() -> None:
    study = load_study(DEMO).study
    plan = make_plan(study)
    sequences = [
        tuple(p.question for p in plan if p.brand == brand.name and p.channel == "x")
        for brand in study.brands
    ]
    ids = [q.id for q in study.questions]
    # Three questions, three probes: every brand hears each question once ...
    assert all(sorted(s) == sorted(ids) for s in sequences)
    # ... and each question is asked first, second and third equally often.
    for position in range(3):
        counts = Counter(s[position] for s in sequences)
        assert max(counts.values()) - min(counts.values()) <= 1


# --- channels ------------------------------------------------------------------------------------


def test_hand_logged_channels_need_no_handle_and_automated_ones_do() -> None:
    study = Study.model_validate(
        {
            "name": "t",
            "year": 2026,
            "channels": {"x": {"account": "me"}, "phone": {"account": "me"}},
            "questions": [{"id": "q", "text": "Hi {brand}?"}],
            "schedule": {"start": "2026-03-02", "end": "2026-03-31", "probes_per_brand": 2},
            "brands": [
                {"name": "On X", "handles": {"x": "onx"}},
                {"name": "Phone only"},
            ],
        }
    )
    plan = make_plan(study)
    assert Counter((p.brand, p.channel) for p in plan) == {
        ("On X", "x"): 2,
        ("On X", "phone"): 2,
        ("Phone only", "phone"): 2,
    }
    assert_gaps_kept(plan, timedelta(days=1))  # across channels too


# --- windows, gaps, DST --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("per_brand", "start", "end", "min_gap", "channels"),
    [
        (3, "2026-03-02", "2026-03-13", "1d", ("x",)),  # roomy
        (5, "2026-03-02", "2026-03-06", "1d", ("x",)),  # exactly full: one a weekday
        (3, "2026-03-02", "2026-03-15", "36h", ("x", "mastodon")),  # full, two channels
        (20, "2026-03-02", "2026-03-13", "2h", ("x",)),
    ],
)
def test_probes_fall_inside_the_windows_and_keep_the_gap(
    per_brand: int, start: str, end: str, min_gap: str, channels: tuple[str, ...]
) -> None:
    study = make_study(
        brands=25, per_brand=per_brand, start=start, end=end, min_gap=min_gap, channels=channels
    )
    plan = make_plan(study)
    assert len(plan) == 25 * per_brand * len(channels)
    assert_inside_windows(plan, study)
    assert_gaps_kept(plan, study.schedule.min_gap)


@settings(max_examples=40, deadline=None)
@given(
    per_brand=st.integers(1, 8),
    days=st.integers(1, 40),
    gap_minutes=st.integers(1, 4 * 1440),
    window=st.sampled_from(
        [
            [{"days": "mon-fri", "start": "09:00", "end": "17:00"}],
            [{"days": "daily", "start": "00:00", "end": "24:00"}],
            [
                {"days": "mon-fri", "start": "08:30", "end": "12:00"},
                {"days": "tue,thu", "start": "13:00", "end": "19:45"},
            ],
            [{"days": "sat,sun", "start": "10:00", "end": "11:00"}],
        ]
    ),
    first=st.dates(date(2026, 1, 1), date(2026, 12, 1)),
)
def test_any_plan_keeps_its_windows_and_gaps_or_says_why_not(
    per_brand: int, days: int, gap_minutes: int, window: list[dict[str, str]], first: date
) -> None:
    study = make_study(
        brands=15,
        per_brand=per_brand,
        start=first.isoformat(),
        end=(first + timedelta(days=days - 1)).isoformat(),
        min_gap=f"{gap_minutes}m",
        windows=window,
    )
    try:
        plan = make_plan(study)
    except StudyError as error:
        assert error.problems[0].where == "schedule"
        assert greedy_capacity(study) < per_brand  # really impossible
        return
    assert len(plan) == 15 * per_brand
    assert_inside_windows(plan, study)
    assert_gaps_kept(plan, study.schedule.min_gap)


def test_local_send_times_survive_a_dst_change() -> None:
    # London springs forward on Sunday 2026-03-29; a 09:00-10:00 window stays 09:00 local.
    study = make_study(
        brands=10,
        per_brand=4,
        start="2026-03-23",
        end="2026-04-05",
        min_gap="1d",
        windows=[{"days": "daily", "start": "09:00", "end": "10:00"}],
    )
    plan = make_plan(study)
    assert_inside_windows(plan, study)
    assert {p.planned_at.astimezone(study.zone).hour for p in plan} == {9}
    before = [p for p in plan if p.planned_at.date() < date(2026, 3, 29)]
    after = [p for p in plan if p.planned_at.date() >= date(2026, 3, 29)]
    assert before and after
    assert {p.planned_at.hour for p in before} == {9}  # GMT
    assert {p.planned_at.hour for p in after} == {8}  # BST


def test_the_autumn_change_in_new_york() -> None:
    study = make_study(
        brands=10,
        per_brand=3,
        start="2026-10-26",
        end="2026-11-06",
        timezone="America/New_York",
        windows=[{"days": "mon-fri", "start": "09:00", "end": "12:00"}],
    )
    plan = make_plan(study)
    assert_inside_windows(plan, study)
    assert_gaps_kept(plan, timedelta(days=1))


def test_probes_spread_over_the_schedule_and_the_day() -> None:
    study = make_study(brands=200, per_brand=4, start="2026-03-02", end="2026-03-27")
    plan = make_plan(study)
    days = Counter(p.planned_at.astimezone(study.zone).date() for p in plan)
    hours = Counter(p.planned_at.astimezone(study.zone).hour for p in plan)
    assert len(days) == 20 and len(hours) == 8  # every weekday, every hour 09-16
    expected_day, expected_hour = len(plan) / 20, len(plan) / 8
    assert all(abs(n - expected_day) < 0.5 * expected_day for n in days.values()), days
    assert all(abs(n - expected_hour) < 0.3 * expected_hour for n in hours.values()), hours


# --- impossible schedules ------------------------------------------------------------------------


def test_a_schedule_too_short_for_the_gap_is_refused_with_a_fix() -> None:
    study = make_study(per_brand=6, start="2026-03-02", end="2026-03-08", min_gap="1d")
    with pytest.raises(StudyError) as caught:
        make_plan(study, source="studies/t.toml")
    (problem,) = caught.value.problems
    assert problem.file == "studies/t.toml"
    assert problem.where == "schedule"
    assert "only 5 fit" in problem.message
    assert "lengthen the schedule" in problem.message


def test_counting_all_channels_against_the_gap() -> None:
    # 3 per channel fit in a week; 3 on each of two channels (6 a brand) do not.
    make_plan(make_study(per_brand=3, start="2026-03-02", end="2026-03-06"))
    with pytest.raises(StudyError, match="cannot fit 6 probes per brand"):
        make_plan(
            make_study(per_brand=3, start="2026-03-02", end="2026-03-06", channels=("x", "bluesky"))
        )


def test_windows_that_never_open_are_refused() -> None:
    weekend = make_study(start="2026-03-07", end="2026-03-08")  # Sat-Sun, windows mon-fri
    with pytest.raises(StudyError, match="never open"):
        make_plan(weekend)


# --- scale ---------------------------------------------------------------------------------------


def test_500_brands_times_20_probes_make_a_plan_of_ten_thousand() -> None:
    """Its speed is a benchmark (tests/perf/test_plan_perf.py), not a timed unit test."""
    plan = make_plan(make_study(brands=500, per_brand=20, start="2026-03-02", end="2026-04-26"))
    assert len(plan) == 10_000
    assert plan[-1].id == "p10000" and plan[0].id == "p00001"
    assert plan[0].planned_at >= datetime(2026, 3, 2, tzinfo=UTC)


def test_no_probe_is_planned_on_a_public_holiday_of_the_study_s_calendar() -> None:
    """Easter Monday 2026 is a bank holiday in England: a study naming GB-ENG sends nothing
    that day; the same study without a calendar does."""
    data = {
        "name": "easter", "year": 2026, "timezone": "Europe/London", "cutoff": "1d",
        "channels": {"x": {"account": "researcher"}},
        "questions": [{"id": "q", "text": "Hi {brand}, are you open today?"}],
        "schedule": {"start": "2026-04-06", "end": "2026-04-07", "probes_per_brand": 1,
                     "min_gap": "1h", "seed": 1},
        "brands": [{"name": f"Brand {n}", "handles": {"x": f"brand{n}"}} for n in range(12)],
    }
    easter_monday = date(2026, 4, 6)
    days = [p.planned_at.astimezone(ZoneInfo("Europe/London")).date()
            for p in make_plan(Study.model_validate(data))]
    assert easter_monday in days  # without a calendar it is a Monday like any other
    with_calendar = Study.model_validate({**data, "holidays": "GB-ENG"})
    assert easter_monday in with_calendar.holiday_dates()
    days = [p.planned_at.astimezone(ZoneInfo("Europe/London")).date()
            for p in make_plan(with_calendar)]
    assert len(days) == 12 and easter_monday not in days
    assert with_calendar.digest != Study.model_validate(data).digest  # it changes the plan
