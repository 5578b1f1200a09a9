"""The X channel reading direct messages (``read_dms``): against the sandbox through tweepy, then
the reader's care with what X may send, against a scripted client."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from mystery.channels.base import Message
from mystery.channels.x import XChannel
from mystery.channels.x_dms import DM_PAGE, join_cursor, read_dms, split_cursor
from mystery.clock import parse_iso
from mystery.errors import AuthError
from mystery.sandbox import SandboxControl
from mystery.sandbox.server import SandboxServer
from mystery.sandbox.spec import BrandSpec, WorldSpec
from mystery.study.model import Profile

START = parse_iso("2026-03-02T09:00:00Z")


@pytest.fixture
def world(sandbox: SandboxServer) -> SandboxServer:
    """Acme answers every probe by DM (from @Acme or @AcmeHelp) an hour after its public note."""
    acme = BrandSpec(
        name="Acme", handles={"x": "Acme"}, aliases={"x": ["AcmeHelp"]},
        profile=Profile(ack_median=timedelta(minutes=10), resolve_after=timedelta(hours=1),
                        dm_share=1, alias_share=0.5),
    )
    sandbox.world.configure(WorldSpec(seed=3, start=START, researcher={"x": "res"}, brands=[acme]))
    return sandbox


def _channel(world: SandboxServer, read_dms: bool) -> Iterator[XChannel]:
    channel = XChannel("res", world.url, sandbox=True, visibility_lag=timedelta(0),
                       read_dms=read_dms)
    channel.open()
    yield channel
    channel.close()


@pytest.fixture
def reader(world: SandboxServer) -> Iterator[XChannel]:
    yield from _channel(world, read_dms=True)


@pytest.fixture
def plain(world: SandboxServer) -> Iterator[XChannel]:
    yield from _channel(world, read_dms=False)


def _probe(world: SandboxServer, text: str) -> None:
    world.world.create_post(world.world.researcher.id, text)


def _truth(world: SandboxServer, direct: bool) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in world.ground_truth()["replies"] if r["direct"] == direct}


def test_a_poll_returns_the_brands_dms_as_direct_messages(
    world: SandboxServer, reader: XChannel
) -> None:
    for i in range(4):
        _probe(world, f"@Acme order {i}?")
    world.world.advance_by(timedelta(days=2))
    poll = reader.poll(None, world.world.now())
    dms = {m.message_id: m for m in poll.messages if m.direct}
    truth = _truth(world, direct=True)
    assert sorted(dms) == sorted(truth) and len(dms) == 4
    for message_id, dm in dms.items():
        expected = truth[message_id]
        assert dm == Message(
            message_id=message_id, author=expected["author"], text=expected["text"],
            created_at=parse_iso(expected["created_at"]),  # to the millisecond
            in_reply_to=None, conversation_id=None, direct=True,
        )
    # The public notes still come through the mentions timeline, in their threads.
    public = [m for m in poll.messages if not m.direct]
    assert sorted(m.message_id for m in public) == sorted(_truth(world, direct=False))
    mentions, dm_cursor = split_cursor(poll.cursor)
    assert poll.cursor == f"{mentions}|{dm_cursor}"
    assert mentions == max((m.message_id for m in public), key=int)
    assert dm_cursor == max(dms, key=int)


def test_each_dm_is_returned_once_and_a_poll_stops_at_its_cursor(
    world: SandboxServer, reader: XChannel
) -> None:
    for i in range(DM_PAGE + 5):
        _probe(world, f"@Acme parcel {i}?")
    world.world.advance_by(timedelta(days=2))
    stats = world.stats
    first = reader.poll(None, world.world.now())
    assert len([m for m in first.messages if m.direct]) == DM_PAGE + 5
    assert stats.snapshot()["GET /2/dm_events"] == 2  # two pages
    # Nothing new: one request for the newest event alone (X bills each event returned).
    again = reader.poll(first.cursor, world.world.now())
    assert again.messages == [] and again.cursor == first.cursor
    assert stats.snapshot()["GET /2/dm_events"] == 3
    _probe(world, "@Acme one more?")
    world.world.advance_by(timedelta(days=1))
    later = reader.poll(again.cursor, world.world.now())
    assert len([m for m in later.messages if m.direct]) == 1
    # The newest is new, so one page from the top, which reaches the cursor: no more pages.
    assert stats.snapshot()["GET /2/dm_events"] == 5


def test_a_cursor_stored_before_dms_were_read_still_serves_the_mentions(
    world: SandboxServer, reader: XChannel, plain: XChannel
) -> None:
    _probe(world, "@Acme before?")
    world.world.advance_by(timedelta(days=1))
    old = plain.poll(None, world.world.now())
    assert old.cursor is not None and old.cursor.isdigit()  # the format stored until now
    assert not any(m.direct for m in old.messages)
    assert "GET /2/dm_events" not in world.stats.snapshot()  # nothing read, nothing paid
    _probe(world, "@Acme after?")
    world.world.advance_by(timedelta(days=1))
    new = reader.poll(old.cursor, world.world.now())
    assert len([m for m in new.messages if not m.direct]) == 1  # only the new public note
    assert len([m for m in new.messages if m.direct]) == 2  # every DM in the inbox
    # Turned off again, the channel keeps the mentions part and drops the DM part.
    back = plain.poll(new.cursor, world.world.now())
    assert back.messages == [] and back.cursor == split_cursor(new.cursor)[0]


def test_a_token_without_dm_access_is_told_what_to_fix(
    world: SandboxServer, reader: XChannel, control: SandboxControl
) -> None:
    control.add_fault("GET /2/dm_events", status=403)
    with pytest.raises(AuthError, match=r"dm\.read scope.*Direct Messages.*read_dms = false"):
        reader.poll(None, world.world.now())


def test_cursor_strings() -> None:
    assert split_cursor(None) == (None, None)
    assert split_cursor("123") == ("123", None)
    assert split_cursor("123|456") == ("123", "456")
    assert split_cursor("|456") == (None, "456")
    assert join_cursor(None, None) is None
    assert join_cursor("123", None) == "123|"
    assert split_cursor(join_cursor(None, "9")) == (None, "9")


class Inbox:
    """A tweepy Client stand-in: a DM inbox (newest first) paged as X pages it, and lookups."""

    def __init__(self, events: list[Any], included: dict[str, str],
                 others: dict[str, str]) -> None:
        self.events = events
        self.included = included  # users X names in ``includes``
        self.others = others  # users only a lookup finds
        self.calls: list[dict[str, Any]] = []

    def get_direct_message_events(self, *, max_results: int, pagination_token: str | None = None,
                                  **params: Any) -> dict[str, Any]:
        self.calls.append({"max_results": max_results, "pagination_token": pagination_token,
                           **params})
        start = int(pagination_token or 0)
        chunk = self.events[start:start + max_results]
        senders = {e.get("sender_id") for e in chunk if isinstance(e, dict)}
        body: dict[str, Any] = {"meta": {"result_count": len(chunk)}}
        if chunk:
            body["data"] = chunk
            body["includes"] = {"users": [{"id": i, "username": n}
                                          for i, n in self.included.items() if i in senders]}
        if start + max_results < len(self.events):
            body["meta"]["next_token"] = str(start + max_results)
        return body

    def get_user(self, *, id: str, user_auth: bool) -> dict[str, Any]:
        self.calls.append({"user": id})
        return {"data": {"id": id, "username": self.others[id]}}


def _call(what: str, fn: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
    result: dict[str, Any] = fn(*args, **kwargs)
    return result


OURS, BRAND, STRANGER = "100", "200", "300"
CURSOR = "1780000000000000005"


def _inbox() -> Inbox:
    def event(n: int, sender: str | None, text: str, **more: Any) -> dict[str, Any]:
        return {"id": f"178000000000000000{n}", "event_type": "MessageCreate", "text": text,
                "sender_id": sender, **more}

    return Inbox([
        event(9, BRAND, "a &amp; b", created_at="2024-04-15T22:27:25.000Z"),
        event(8, OURS, "mine"),
        {"id": "1780000000000000007", "event_type": "ParticipantsJoin",
         "participant_ids": [STRANGER]},
        {"id": "not-a-number", "event_type": "MessageCreate", "text": "?"},
        event(6, STRANGER, "hello", created_at="2030-01-01T00:00:00.000Z"),
        event(5, BRAND, "seen already"),
        event(4, BRAND, "older still"),
    ], included={BRAND: "Acme"}, others={STRANGER: "someone"})


def test_the_reader_keeps_only_usable_messages_from_others() -> None:
    client = _inbox()
    names: dict[str, str] = {}
    read = read_dms(_call, client, user_auth=True, own_id=OURS,
                    cursor=CURSOR, names=names)
    assert [(m.message_id, m.author, m.text) for m in read.messages] == [
        ("1780000000000000006", "someone", "hello"),  # looked up: not in includes
        ("1780000000000000009", "Acme", "a & b"),
    ]
    assert all(m.direct and m.in_reply_to is None for m in read.messages)
    # The snowflake agrees with created_at to the second, so it gives the millisecond; a
    # created_at it disagrees with wins.
    assert read.messages[1].created_at == parse_iso("2024-04-15T22:27:25.457Z")
    assert read.messages[0].created_at == parse_iso("2030-01-01T00:00:00Z")
    assert read.cursor == "1780000000000000009" and read.skipped == 1 and read.warnings
    # The newest event alone, then larger pages from the top until one reaches the cursor;
    # then the one lookup. Messages only, every time.
    pages = [c for c in client.calls if "user" not in c]
    assert [(c["max_results"], c["pagination_token"]) for c in pages] == [
        (1, None), (5, None), (25, None)]
    assert all(c["event_types"] == ["MessageCreate"] for c in pages)
    assert client.calls[-1] == {"user": STRANGER}
    assert names == {BRAND: "Acme", STRANGER: "someone"}


def test_a_quiet_poll_reads_one_event_and_a_first_one_reads_everything() -> None:
    client = _inbox()
    client.events = client.events[5:]  # nothing newer than the cursor
    read = read_dms(_call, client, user_auth=False, own_id=OURS,
                    cursor=CURSOR, names={})
    assert read.messages == [] and read.cursor == CURSOR
    assert [c["max_results"] for c in client.calls] == [1]
    client = _inbox()
    client.events = client.events * 30  # 210 events: three full pages
    first = read_dms(_call, client, user_auth=False, own_id=OURS,
                     cursor=None, names={})
    assert len(first.messages) == 4 and first.cursor == "1780000000000000009"
    assert [(c["max_results"], c["pagination_token"]) for c in client.calls[:3]] == [
        (DM_PAGE, None), (DM_PAGE, "100"), (DM_PAGE, "200")]
