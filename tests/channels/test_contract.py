"""The channel contract: every channel keeps it, and says which optional capabilities it has
by being an instance of their Protocols, never by attributes looked up by name."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mystery.channels.base import Billed, Channel, Outgoing, OwnPosts
from mystery.channels.bluesky import BlueskyChannel
from mystery.channels.catchup import ThreadSearch
from mystery.channels.email import EmailChannel
from mystery.channels.mastodon import MastodonChannel
from mystery.channels.memory import MemoryChannel
from mystery.channels.x import XChannel
from mystery.clock import VirtualClock
from mystery.errors import TransientError

START = datetime(2026, 3, 2, 9, tzinfo=UTC)


def _channels(monkeypatch: pytest.MonkeyPatch) -> dict[str, Channel]:
    monkeypatch.setenv("MYSTERY_X_BEARER_TOKEN", "t" * 20)
    monkeypatch.setenv("MYSTERY_MASTODON_TOKEN", "t" * 20)
    monkeypatch.setenv("MYSTERY_BLUESKY_APP_PASSWORD", "p" * 20)
    monkeypatch.setenv("MYSTERY_EMAIL_PASSWORD", "p" * 20)
    return {
        "x": XChannel("researcher", "http://127.0.0.1:9", sandbox=True),
        "mastodon": MastodonChannel("researcher@social.example", "http://127.0.0.1:9"),
        "bluesky": BlueskyChannel("researcher.bsky.social", "http://127.0.0.1:9"),
        "email": EmailChannel("researcher@example.org", "imap://127.0.0.1:9", token_salt="s"),
        "memory": MemoryChannel("memory", VirtualClock(START)),
    }


@pytest.mark.parametrize(("name", "capabilities"), [
    ("x", {"OwnPosts", "Billed", "ThreadSearch"}),
    ("mastodon", {"OwnPosts"}),
    ("bluesky", {"OwnPosts"}),
    ("email", set()),
    ("memory", set()),
])
def test_each_channel_declares_its_capabilities_by_protocol(
    monkeypatch: pytest.MonkeyPatch, name: str, capabilities: set[str]
) -> None:
    channel = _channels(monkeypatch)[name]
    assert channel.requests == 0 and channel.skipped == 0  # before anything is asked
    found = {p.__name__ for p in (OwnPosts, Billed, ThreadSearch) if isinstance(channel, p)}
    assert found == capabilities


def test_the_memory_channel_answers_each_post_later_in_its_thread() -> None:
    clock = VirtualClock(START)
    channel = MemoryChannel("x", clock, answer_after=timedelta(minutes=5))
    sent = channel.send(Outgoing("p1", "acme", "Hi Acme, open on Sunday?"))
    assert sent.sent_at == START and sent.text == "@acme Hi Acme, open on Sunday?"
    assert channel.poll(None, START + timedelta(minutes=4)).messages == []
    poll = channel.poll(None, START + timedelta(minutes=5))
    (reply,) = poll.messages
    assert (reply.author, reply.created_at, reply.in_reply_to) == ("acme", START +
                                                                   timedelta(minutes=5), "1")
    assert channel.poll(poll.cursor, START + timedelta(hours=1)).messages == []  # read once
    assert channel.find_sent(Outgoing("p1", "acme", "Hi Acme, open on Sunday?"), START) == sent
    channel.poll_faults.append(TransientError("down"))
    with pytest.raises(TransientError):
        channel.poll(poll.cursor, START)
    assert channel.requests == 6  # send, four polls (one failed), one look-up
