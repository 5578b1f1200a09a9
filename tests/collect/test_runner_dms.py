"""Direct messages have no thread: the runner gives a brand's DM to that brand's latest probe on
the channel sent before it and still open, and ignores DMs from anyone else."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mystery.channels.base import Message
from mystery.clock import VirtualClock
from mystery.collect.runner import Runner
from mystery.store.store import Store
from mystery.study.model import Study
from mystery.study.plan import make_plan

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)
HOUR = timedelta(hours=1)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    study = _study()
    with Store.open(tmp_path / "dms.db") as opened:
        opened.initialise(study, make_plan(study))
        yield opened


def _study() -> Study:
    return Study.model_validate({
        "name": "dms", "year": 2026, "cutoff": "3d",
        "channels": {"x": {"account": "researcher", "poll_every": "5m", "read_dms": True}},
        "questions": [{"id": "q", "text": "Hi {brand}, where is my parcel?"}],
        "schedule": {"start": "2026-03-02", "end": "2026-03-06", "probes_per_brand": 2,
                     "min_gap": "1d", "seed": 1},
        "brands": [{"name": "Acme", "handles": {"x": "Acme"}, "aliases": {"x": ["AcmeHelp"]}},
                   {"name": "Globex", "handles": {"x": "Globex"}}],
    })


def _send(store: Store, brand: str, at: datetime) -> str:
    """Mark the next planned probe of ``brand`` as sent at ``at``."""
    probe = next(p for p in store.probes(state="planned") if p.brand == brand)
    store.begin_send(probe.id, at)
    store.mark_sent(probe.id, str(int(at.timestamp())), at, probe.text, at)
    return probe.id


def _dm(message_id: str, author: str, at: datetime) -> Message:
    return Message(message_id, author, "All sorted: your refund is on its way.", at, None, None,
                   direct=True)


class Idle:
    """A channel never asked anything here: attribution reads only the store."""

    name = "x"
    visibility_lag = timedelta(0)


def _runner(store: Store) -> Runner:
    return Runner(_study(), store, {"x": Idle()}, VirtualClock(T0))  # type: ignore[dict-item]


def _attribute(store: Store, *messages: Message) -> dict[str, tuple[str, str]]:
    runner = _runner(store)
    replies = runner._poller.attribute("x", messages)
    return {r.message_id: (r.probe_id, r.auto_code) for r in replies}


def test_a_brand_dm_goes_to_its_latest_open_probe_sent_before_it(store: Store) -> None:
    first = _send(store, "Acme", T0)
    second = _send(store, "Acme", T0 + 24 * HOUR)
    _send(store, "Globex", T0 + 25 * HOUR)
    found = _attribute(
        store,
        _dm("d1", "AcmeHelp", T0 + 2 * HOUR),  # an alias, before the second probe
        _dm("d2", "acme", T0 + 30 * HOUR),  # handles match without regard to case
        _dm("d3", "Acme", T0 + 24 * HOUR),  # at the very instant of the second: the first
    )
    assert found == {
        "d1": (first, "resolution"),
        "d2": (second, "resolution"),
        "d3": (first, "resolution"),
    }
    rows = _runner(store)._poller.attribute("x", [_dm("d4", "Acme", T0 + HOUR)])
    assert rows[0].in_reply_to is None and rows[0].conversation_id is None


def test_dms_from_others_or_without_an_open_probe_are_ignored(store: Store) -> None:
    probe = _send(store, "Acme", T0 + HOUR)
    assert _attribute(
        store,
        _dm("d1", "stranger", T0 + 2 * HOUR),  # not a brand
        _dm("d2", "Acme", T0),  # before any probe of Acme
        _dm("d3", "Globex", T0 + 2 * HOUR),  # a brand with no probe out
    ) == {}
    store.settle(probe, "answered", T0 + 3 * HOUR)
    assert _attribute(store, _dm("d4", "Acme", T0 + 4 * HOUR)) == {}  # settled: nothing open
