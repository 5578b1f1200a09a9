"""The runner's promises, against scripted in-memory channels: every path of an uncertain send,
polls held while a send is uncertain, one channel's refusal not stopping the others, bounded
retries, and a clock that never runs past a due send.

(The same promises against the sandbox and real tweepy: ``tests/faults`` and ``tests/crash``.)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mystery.channels.memory import MemoryChannel
from mystery.clock import VirtualClock, iso
from mystery.collect.progress import Progress, Wait
from mystery.collect.runner import MAX_SEND_FAILURES, Runner
from mystery.collect.together import run_together
from mystery.errors import AuthError, RateLimited, Rejected, TransientError
from mystery.store.store import Store
from mystery.study.model import Study
from mystery.study.plan import make_plan
from mystery.timings.export import timing_rows

START = datetime(2026, 3, 2, tzinfo=UTC)
ANSWER_AFTER = timedelta(minutes=10)


def _memory(name: str, clock: VirtualClock) -> MemoryChannel:
    """The in-memory platform, its brands answering ``ANSWER_AFTER`` after each post."""
    return MemoryChannel(name, clock, answer_after=ANSWER_AFTER)


def _study(*channels: str, **config: object) -> Study:
    return Study.model_validate({
        "name": "runner-t", "year": 2026, "cutoff": "1d",
        "channels": {c: {"account": "researcher", "poll_every": "7m", **config}
                     for c in channels},
        "questions": [{"id": "q", "text": "Hi {brand}, are you open on Sundays?"},
                      {"id": "r", "text": "Hi {brand}, do you deliver?"}],
        "schedule": {"start": "2026-03-02", "end": "2026-03-02", "probes_per_brand": 2,
                     "min_gap": "1h", "seed": 4},
        "brands": [{"name": n, "handles": {c: n.lower() for c in channels}}
                   for n in ("Acme", "Globex", "Initech")],
    })


@dataclass
class Rig:
    study: Study
    store: Store
    clock: VirtualClock
    channels: dict[str, MemoryChannel]
    notices: list[str] = field(default_factory=list)

    def runner(self) -> Runner:
        return Runner(self.study, self.store, self.channels, self.clock,
                      on_notice=self.notices.append)

    def outcomes(self, probe_id: str) -> list[str | None]:
        return [a[1] for a in self.store.attempts(probe_id)]

    def notices_with(self, text: str) -> list[str]:
        return [n for n in self.notices if text in n]


@pytest.fixture
def rig(store_at: Callable[[], str], request: pytest.FixtureRequest) -> Iterator[Rig]:
    """The runner on a planned store, on SQLite and on PostgreSQL (``store_at``)."""
    names = getattr(request, "param", ("x",))
    study = _study(*names)
    clock = VirtualClock(START)
    with Store.open(store_at()) as store:
        store.initialise(study, make_plan(study))
        yield Rig(study, store, clock, {n: _memory(n, clock) for n in names})


def _texts(channel: MemoryChannel) -> list[str]:
    return [p.text for p in channel.posts]


def test_every_probe_goes_out_at_its_planned_instant_and_is_answered(rig: Rig) -> None:
    result = run_together([rig.runner()])
    assert result.finished
    assert all(p.sent_at == p.planned_at for p in rig.store.probes())
    assert all(r["ack_seconds"] == ANSWER_AFTER.total_seconds() for r in timing_rows(rig.store))


def test_a_post_made_but_unanswered_is_found_not_posted_again(rig: Rig) -> None:
    x = rig.channels["x"]
    x.send_faults = [("after", TransientError("timeout"))]
    assert run_together([rig.runner()]).finished
    assert len(_texts(x)) == len(set(_texts(x))) == 6
    first = rig.store.probes()[0]
    assert rig.outcomes(first.id) == ["reconciled"]
    assert first.sent_at == first.planned_at  # the platform's time, not the check's


def test_a_post_that_never_arrived_is_checked_then_sent_again(rig: Rig) -> None:
    x = rig.channels["x"]
    x.send_faults = [TransientError("503"), TransientError("503")]
    assert run_together([rig.runner()]).finished
    first = rig.store.probes()[0]
    assert rig.outcomes(first.id) == ["failed", "failed", "sent"]
    assert len(_texts(x)) == 6
    assert first.sent_at is not None and first.sent_at > first.planned_at  # after a backoff


def test_a_crash_after_the_post_is_reconciled_on_restart(rig: Rig) -> None:
    x = rig.channels["x"]
    probe = rig.store.probes()[0]
    rig.clock.sleep_until(probe.planned_at)
    rig.store.begin_send(probe.id, rig.clock.now())  # ... then the post, then SIGKILL
    x.post(f"@{probe.brand.lower()} {probe.text}")
    assert run_together([rig.runner()]).finished
    assert rig.outcomes(probe.id) == ["reconciled"]
    assert len(_texts(x)) == 6


def test_a_crash_before_the_post_is_sent_on_restart_at_the_same_instant(rig: Rig) -> None:
    probe = rig.store.probes()[0]
    rig.clock.sleep_until(probe.planned_at)
    rig.store.begin_send(probe.id, rig.clock.now())  # SIGKILL before the post left
    assert run_together([rig.runner()]).finished
    assert rig.outcomes(probe.id) == ["interrupted", "sent"]
    assert rig.store.probes_by_id([probe.id])[0].sent_at == probe.planned_at
    assert rig.outcomes(probe.id).count("failed") == 0  # a crash is not the platform's failure


def test_no_poll_while_a_send_is_uncertain(rig: Rig) -> None:
    x = rig.channels["x"]
    x.send_faults = [("after", TransientError("timeout"))]
    x.find_faults = [TransientError("503")] * 3
    assert run_together([rig.runner()]).finished
    first = rig.store.probes()[0]
    reconciled = rig.store.probes_by_id([first.id])[0]
    [checked_at] = [a[0] for a in rig.store.attempts(first.id)]
    assert reconciled.sent_at == first.planned_at
    # Polls resumed only once the post's id was known, and still found its reply.
    assert len(rig.notices_with("cannot check our timeline yet")) == 3
    assert min(x.polls) > first.planned_at + timedelta(seconds=2)
    assert checked_at == iso(first.planned_at)
    assert all(r["ack_seconds"] == ANSWER_AFTER.total_seconds() for r in timing_rows(rig.store))


def test_a_duplicate_refusal_after_an_uncertain_send_is_checked_not_excluded(rig: Rig) -> None:
    x = rig.channels["x"]
    x.send_faults = [TransientError("timeout"), Rejected("duplicate content")]
    x.find_faults = []
    assert run_together([rig.runner()]).finished
    first = rig.store.probes()[0]
    assert rig.outcomes(first.id)[:2] == ["failed", "failed"]  # checked twice, then sent
    assert rig.store.probes_by_id([first.id])[0].outcome == "answered"


def test_a_rejected_probe_is_excluded_with_its_reason(rig: Rig) -> None:
    rig.channels["x"].send_faults = [Rejected("X rejected POST /2/tweets: text too long")]
    assert run_together([rig.runner()]).finished
    [flag] = rig.store.flags()
    assert (flag.kind, flag.reason) == ("rejected", "X rejected POST /2/tweets: text too long")


def test_a_probe_failing_again_and_again_is_excluded_after_bounded_tries(rig: Rig) -> None:
    x = rig.channels["x"]
    x.send_faults = [TransientError("503")] * MAX_SEND_FAILURES
    assert run_together([rig.runner()]).finished
    first = rig.store.probes()[0]
    assert rig.outcomes(first.id).count("failed") == MAX_SEND_FAILURES
    assert rig.store.probes_by_id([first.id])[0].outcome == "excluded"
    assert len(_texts(x)) == 5


@pytest.mark.parametrize("rig", [("x", "mastodon")], indirect=True)
def test_one_channel_refusing_our_credentials_does_not_stop_the_others(rig: Rig) -> None:
    rig.channels["mastodon"].poll_faults = [AuthError("401: fix MYSTERY_MASTODON_TOKEN")]
    result = run_together([rig.runner()])
    assert result.stopped == {"mastodon": "401: fix MYSTERY_MASTODON_TOKEN"}
    assert not result.finished
    assert rig.store.count(("settled",), ["x"]) == 6  # x went on to the end
    assert rig.store.count(("settled",), ["mastodon"]) == 0


def test_until_pauses_before_that_instant(rig: Rig) -> None:
    second = rig.store.probes()[1]
    result = run_together([rig.runner()], until=second.planned_at - timedelta(seconds=1))
    assert not result.finished
    assert rig.clock.now() < second.planned_at
    assert rig.store.probes_by_id([second.id])[0].state == "planned"
    assert run_together([rig.runner()]).finished



@pytest.mark.parametrize("rig", [("x", "mastodon")], indirect=True)
def test_a_channel_that_could_not_even_open_is_reported_and_the_study_not_finished(
    rig: Rig,
) -> None:
    runner = Runner(rig.study, rig.store, {"x": rig.channels["x"]}, rig.clock,
                    stopped={"mastodon": "no Mastodon token: run 'mystery auth set mastodon'"})
    result = run_together([runner])
    assert result.stopped == {"mastodon": "no Mastodon token: run 'mystery auth set mastodon'"}
    assert not result.finished
    assert rig.store.count(("settled",), ["x"]) == 6


# -- what a run reports while it goes (the live view draws these facts) ---------------------


def _reporting(rig: Rig) -> tuple[Runner, list[Progress]]:
    runner = Runner(rig.study, rig.store, rig.channels, rig.clock, on_notice=rig.notices.append)
    return runner, []


def test_each_report_names_the_event_the_run_then_wakes_for(rig: Rig) -> None:
    runner, reports = _reporting(rig)
    result = run_together([runner], on_progress=reports.append)
    *going, last = reports
    first = min(rig.store.probes(), key=lambda p: (p.planned_at, p.id))
    assert going[0].next_event is not None and going[0].next_event.kind == "send"
    assert going[0].next_event.probe_id == first.id
    assert going[0].next_event.at == first.planned_at
    for report, after in zip(going, reports[1:], strict=False):
        assert report.next_event is not None and not report.final
        assert after.now == report.next_event.at  # the clock went exactly there
    kinds = {r.next_event.kind for r in going if r.next_event is not None}
    assert kinds == {"send", "poll"}
    assert all(r.timezone == rig.study.timezone and r.virtual for r in reports)
    # The last report comes after the loop, and its counts are the result's.
    assert last.final and last.next_event is None
    assert last.counts() == result.counts
    by_channel = last.channel_counts()
    assert set(by_channel) == {"x"} and by_channel["x"] == result.counts


def test_a_rate_limit_is_reported_as_a_wait_with_its_reset(rig: Rig) -> None:
    first = min(rig.store.probes(), key=lambda p: (p.planned_at, p.id))
    reset = first.planned_at + timedelta(minutes=15)
    rig.channels["x"].send_faults = [RateLimited("429 too many requests", reset)]
    runner, reports = _reporting(rig)
    assert run_together([runner], on_progress=reports.append).finished
    refused = next(r for r in reports if r.waits)
    assert refused.waits == (Wait("x", "posting", reset),)
    assert refused.next_event is not None and refused.next_event.at == reset
    after = reports[reports.index(refused) + 1]
    assert after.now == reset and not after.waits  # over once the clock reaches the reset


def test_probes_held_by_a_safeguard_are_counted_per_channel(tmp_path: Path) -> None:
    study = _study("x", daily_cap=2)
    clock = VirtualClock(START)
    with Store.open(tmp_path / "s.db") as store:
        store.initialise(study, make_plan(study))
        reports: list[Progress] = []
        runner = Runner(study, store, {"x": _memory("x", clock)}, clock)
        run_together([runner], until=START + timedelta(hours=23), on_progress=reports.append)
    held = [r.held.get("x", 0) for r in reports]
    assert max(held) == len(make_plan(study)) - 2  # all but the two the cap lets out today
    assert all(set(r.held) <= {"x"} for r in reports)
