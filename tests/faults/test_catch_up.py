"""Catch-up after downtime: every reply posted while the runner was down is found with its true
time — past 100 mentions (pages), past the 800 the mentions timeline reaches (recent search by
conversation) — and a probe whose replies may lie beyond even that is excluded with its reason,
never silently counted unanswered."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from mystery.clock import parse_iso
from mystery.sandbox import SandboxControl, SandboxServer
from mystery.store.store import Store
from mystery.timings.export import timing_rows
from tests.faults.fault_helpers import assert_exact, collect, write_study

PAUSE = parse_iso("2026-03-02T17:30:00Z")
"""Every probe is out (they are all due on Monday between 09:00 and 17:00)."""


def _go_down(study: Path, sandbox: SandboxServer, control: SandboxControl, *, crowd: int,
             crowd_until: timedelta, back_after: timedelta) -> set[str]:
    """Run until ``PAUSE``, then stay down while a crowd mentions the researcher; return the
    probes still open when the runner went down."""
    paused = collect(study, sandbox, until=PAUSE)
    assert not paused.result.finished
    with Store.open(study.with_suffix(".db"), create=False) as store:
        assert store.count(("planned", "sending")) == 0
        still_open = {p.id for p in store.probes(state="sent")}
    start = PAUSE + timedelta(minutes=1)
    control.add_crowd(crowd, start, start + crowd_until)
    control.advance_to(PAUSE + back_after)
    return still_open


@pytest.fixture
def study(tmp_path: Path) -> Path:
    return write_study(tmp_path, end="2026-03-02", min_gap="2h")


def test_replies_during_downtime_are_found_across_pages(
    study: Path, sandbox: SandboxServer, control: SandboxControl
) -> None:
    _go_down(study, sandbox, control, crowd=350, crowd_until=timedelta(hours=20),
             back_after=timedelta(days=1))
    sandbox.stats.reset()
    outcome = collect(study, sandbox)
    assert outcome.result.finished
    assert sandbox.stats.snapshot()["GET /2/users/:id/mentions"] > 4  # paged through 350+
    assert not outcome.said("could not reach back")
    assert_exact(study, sandbox)


@pytest.mark.parametrize("beyond_reach", ["oldest", "empty"])
def test_replies_beyond_the_800_mentions_are_found_by_search(
    study: Path, sandbox: SandboxServer, control: SandboxControl, beyond_reach: str
) -> None:
    control.set_mentions_beyond_reach(beyond_reach)
    still_open = _go_down(study, sandbox, control, crowd=1000, crowd_until=timedelta(days=1),
                          back_after=timedelta(days=1, hours=6))
    assert still_open
    outcome = collect(study, sandbox)
    assert outcome.result.finished
    [caught_up] = outcome.said("could not reach back")
    assert f"searched {len(still_open)} open probe thread(s), 0 excluded" in caught_up
    if beyond_reach == "empty":
        assert outcome.said("the cursor lies beyond the 800 mentions X can reach")
    assert outcome.result.flagged == 0
    assert_exact(study, sandbox)  # found with their true times, though not in the mentions


def test_probes_whose_replies_lie_beyond_every_horizon_are_flagged_not_unanswered(
    tmp_path: Path, sandbox: SandboxServer, control: SandboxControl
) -> None:
    study = write_study(tmp_path, cutoff="10d", end="2026-03-02", min_gap="2h")
    still_open = _go_down(study, sandbox, control, crowd=1000, crowd_until=timedelta(days=8),
                          back_after=timedelta(days=9))
    outcome = collect(study, sandbox)
    assert outcome.result.finished
    assert outcome.result.flagged == len(still_open) > 0
    assert_exact(study, sandbox, excluded=frozenset(still_open))
    with Store.open(study.with_suffix(".db"), create=False) as store:
        flags = store.flags()
        rows = [r for r in timing_rows(store) if r["status"] == "excluded"]
    assert {f.probe_id for f in flags} == still_open
    assert all(f.kind == "reach" and "beyond what x lets us look back over" in f.reason
               for f in flags)
    assert all(r["ack_seconds"] is None and r["sent_at"] is not None for r in rows)
