"""The live view's frame for a real study, drawn from the facts a run reports: what only a
real study shows (the real clock, an ETA), a rate limit's countdown, probes held back by a
safeguard, the next send in the study's time zone. (The sandbox's frames, as a terminal gets
them, are checked in ``tests/e2e/test_terminal.py``.)"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rich.console import Console

from mystery.cli.liveview import LiveView
from mystery.collect.progress import Event, Progress, Wait
from mystery.store.store import Store
from mystery.study.model import Study
from mystery.study.plan import make_plan

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    study = Study.model_validate({
        "name": "view-t", "year": 2026, "cutoff": "2d", "timezone": "Europe/London",
        "channels": {"x": {"account": "researcher"}},
        "questions": [{"id": "q", "text": "Hi {brand}, are you open on Sundays?"}],
        "schedule": {"start": "2026-03-02", "end": "2026-03-03", "probes_per_brand": 1,
                     "min_gap": "1h"},
        "brands": [{"name": "Acme", "handles": {"x": "acme"}},
                   {"name": "Globex", "handles": {"x": "globex"}}],
    })
    with Store.open(tmp_path / "s.db") as opened:
        opened.initialise(study, make_plan(study))
        yield opened


def _draw(progress: Progress) -> str:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=100, color_system=None)
    view = LiveView(console, "mystery run view-t.toml")
    view.report(progress)
    view.close()
    return buffer.getvalue()


def test_a_real_study_shows_its_real_clock_an_eta_waits_and_holds(store: Store) -> None:
    last = max(p.planned_at for p in store.probes())
    first = min(store.probes(), key=lambda p: p.planned_at)
    progress = Progress(
        T0, store, timezone="Europe/London", virtual=False,
        next_event=Event(first.planned_at, "send", "x", first.id),
        waits=(Wait("x", "posting", T0 + timedelta(minutes=15)),), held={"x": 2},
    )
    frame = _draw(progress)
    assert re.search(r"study clock Mon 2026-03-02 09:00:\d\d Europe/London \(real\)", frame)
    ends = last + timedelta(days=2)  # the plan's last send plus the cutoff
    assert f"the plan's last send plus the cutoff, {ends:%a %Y-%m-%d %H:%M} Europe/London" \
        in frame  # March: London is on UTC
    assert re.search(r"ETA in \d d \d+ h", frame)
    assert re.search(r"x: rate limited while posting; waiting 1[45] min more", frame)
    assert f"next send {first.id} on x at {first.planned_at:%a %H:%M} Europe/London" in frame
    assert re.search(r"^x\s+0\s+0\s+0\s+0\s+2\s+0/2\s*$", frame, re.M)  # held: 2
    assert re.search(r"^all\s+0\s+0\s+0\s+0\s+2\s+0/2\s*$", frame, re.M)
    assert "0/2 settled" in frame


def test_a_sandbox_study_shows_its_virtual_clock_and_no_eta(store: Store) -> None:
    frame = _draw(Progress(T0 + timedelta(days=1), store, timezone="Europe/London",
                           virtual=True, next_event=Event(T0 + timedelta(days=1, minutes=3),
                                                          "poll", "x")))
    assert "study clock Tue 2026-03-03 09:00:00 Europe/London (virtual" in frame
    assert "ETA" not in frame
    assert "next poll x in 3 min" in frame
