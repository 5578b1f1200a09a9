"""The brand safeguards hold across runners on one PostgreSQL study: two runners serving two
accounts, both finding the same brand's probe due at the same instant, must not both ask it.

Each runner has its own store connection and runs in its own thread; a barrier holds both
right after their own check of the safeguards has passed, so both reach the send together:
the race the store's lock on the brand must decide (one sends, the other is held back)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from mystery.channels.memory import MemoryChannel
from mystery.clock import VirtualClock, iso
from mystery.collect import runner as runner_module
from mystery.collect.handoff import DueProbe
from mystery.collect.runner import Runner
from mystery.collect.safeguards import Hold, Safeguards
from mystery.store.store import ProbeRow, Store
from mystery.study.model import Study
from mystery.study.plan import make_plan
from tests.postgres import PostgresServer

START = datetime(2026, 3, 2, 9, tzinfo=UTC)


def _study(channels: dict[str, list[str]], mode: str = "auto") -> Study:
    """One brand, asked on guarded ``channels`` (name → its accounts)."""
    return Study.model_validate({
        "name": "race-t", "year": 2026, "cutoff": "1d",
        "channels": {c: {"accounts": accounts, "poll_every": "7m", "safeguards": True,
                         "mode": mode} for c, accounts in channels.items()},
        "questions": [{"id": "q", "text": "Hi {brand}, are you open on Sundays?"},
                      {"id": "r", "text": "Hi {brand}, do you deliver?"}],
        "schedule": {"start": "2026-03-02", "end": "2026-03-02", "probes_per_brand": 2,
                     "min_gap": "1h", "seed": 4},
        "brands": [{"name": "Acme", "handles": {c: "acme" for c in channels}}],
    })


def _race(url: str, study: Study, served: list[tuple[str, str]],
          monkeypatch: pytest.MonkeyPatch,
          shown: list[DueProbe] | None = None) -> tuple[list[MemoryChannel], list[str]]:
    """Two runners (``served``: channel, account each) take one step together at START, the
    brand's probes all due then; their channels and notices."""
    with Store.open(url) as store:
        store.initialise(study, make_plan(study))
        with store.transaction() as db:  # every probe of the brand due at the same instant
            db.execute("UPDATE probes SET planned_at = ?", (iso(START),))
    barrier = threading.Barrier(2, timeout=30)

    class Together(Safeguards):
        """The runner's own check, then wait for the other runner to have passed its own."""

        def hold(self, probe: ProbeRow, now: datetime) -> Hold | None:
            found = super().hold(probe, now)
            if not getattr(self, "met", False):
                self.met = True
                barrier.wait()
            return found

    monkeypatch.setattr(runner_module, "Safeguards", Together)
    clock = VirtualClock(START)
    channels = [MemoryChannel(channel, clock, answer_after=timedelta(hours=3))
                for channel, _ in served]
    notices: list[str] = []
    failures: list[BaseException] = []

    def one(channel: MemoryChannel, account: str) -> None:
        try:
            with Store.open(url) as mine:
                Runner(study, mine, {channel.name: channel}, clock,
                       accounts={channel.name: account}, on_notice=notices.append,
                       on_due=(shown if shown is not None else []).append).step()
        except BaseException as exc:  # told by the test, not lost in the thread
            failures.append(exc)

    threads = [threading.Thread(target=one, args=(channel, account))
               for channel, (_, account) in zip(channels, served, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
    return channels, notices


def test_two_runners_racing_on_one_brand_on_postgres_send_once(
        postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch) -> None:
    study = _study({"x": ["shopper_a", "shopper_b"]})
    url = postgres_server.database()
    channels, notices = _race(url, study, [("x", "shopper_a"), ("x", "shopper_b")],
                              monkeypatch)
    assert sum(len(c.posts) for c in channels) == 1  # exactly one asked Acme
    held = [n for n in notices if "held back" in n]
    assert len(held) == 1
    assert "still open (one open probe per brand per channel)" in held[0]
    with Store.open(url, create=False) as store:
        states = sorted(p.state for p in store.probes())
    assert states == ["planned", "sent"]  # the held probe waits, it is not dropped


def test_two_researchers_in_manual_mode_on_postgres_are_not_shown_one_brand_at_once(
        postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch) -> None:
    study = _study({"x": ["shopper_a", "shopper_b"]}, mode="manual")
    url = postgres_server.database()
    shown: list[DueProbe] = []
    _, notices = _race(url, study, [("x", "shopper_a"), ("x", "shopper_b")], monkeypatch,
                       shown)
    assert len(shown) == 1  # one researcher is asked to post to Acme, not both
    held = [n for n in notices if "held back" in n]
    assert len(held) == 1
    assert "still open (one open probe per brand per channel)" in held[0]


def test_two_runners_on_two_channels_on_postgres_keep_the_brands_min_gap(
        postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch) -> None:
    study = _study({"x": ["shopper_a"], "mastodon": ["shopper_b"]})
    url = postgres_server.database()
    channels, notices = _race(url, study, [("x", "shopper_a"), ("mastodon", "shopper_b")],
                              monkeypatch)
    assert sum(len(c.posts) for c in channels) == 1
    held = [n for n in notices if "held back" in n]
    other = "mastodon" if channels[0].posts else "x"  # the runner that lost the race
    assert any("less than schedule.min_gap ago" in n
               for n in held if n.split(":")[0] in _ids(url, other))


def _ids(url: str, channel: str) -> set[str]:
    with Store.open(url, create=False) as store:
        return {p.id for p in store.probes(channel=channel)}
