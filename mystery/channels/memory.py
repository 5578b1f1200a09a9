"""A platform and its client in one, in memory: the channel contract with nothing behind it.

Why ship it (as httpx ships ``MockTransport``): the runner's rules (never send twice, never
lose a reply, back off, stop on bad credentials) are tested against a channel whose every
answer a test can script, and anyone can try the runner from Python without a server. It keeps
the contract exactly: platform times come from the clock it is given, ids increase, ``poll``
returns only what its brand has answered by ``now``.

Each post is answered by the brand it mentions ``answer_after`` later, from the brand's own
handle, in the post's thread. Faults are raised in turn from the lists a test fills:
``send_faults`` (an exception, or ``("after", exception)`` to raise it *after* the post was
made: the lost answer behind rule 3), ``find_faults`` and ``poll_faults``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from mystery.channels.base import Message, Outgoing, Poll, Sent
from mystery.clock import Clock, iso


@dataclass
class MemoryPost:
    """One post the researcher made on the in-memory platform."""

    id: str
    text: str
    at: datetime


@dataclass
class MemoryChannel:
    name: str
    clock: Clock
    answer_after: timedelta = timedelta(minutes=10)
    answer_text: str = "Yes, we do."
    visibility_lag: timedelta = timedelta(0)
    posts: list[MemoryPost] = field(default_factory=list)
    send_faults: list[Exception | tuple[str, Exception]] = field(default_factory=list)
    find_faults: list[Exception] = field(default_factory=list)
    poll_faults: list[Exception] = field(default_factory=list)
    polls: list[datetime] = field(default_factory=list)
    requests: int = 0
    skipped: int = 0

    def open(self) -> None:
        """Nothing to log in to."""

    def close(self) -> None:
        """Nothing to release."""

    def brand_authors(self, handles: list[str]) -> None:
        """Brands answer from the handle each post mentions: nothing to look up."""

    def post(self, text: str) -> MemoryPost:
        """Post ``text`` now, as the researcher (what a person in ``manual`` mode does)."""
        made = MemoryPost(str(len(self.posts) + 1), text, self.clock.now())
        self.posts.append(made)
        return made

    def send(self, outgoing: Outgoing) -> Sent:
        self.requests += 1
        fault = self.send_faults.pop(0) if self.send_faults else None
        if isinstance(fault, Exception):
            raise fault
        made = self.post(outgoing.compose())
        if fault is not None:
            raise fault[1]
        return Sent(made.id, made.at, made.text)

    def find_sent(self, outgoing: Outgoing, since: datetime) -> Sent | None:
        self.requests += 1
        if self.find_faults:
            raise self.find_faults.pop(0)
        return next((Sent(p.id, p.at, p.text) for p in self.posts
                     if p.text == outgoing.compose() and p.at >= since), None)

    def poll(self, cursor: str | None, now: datetime) -> Poll:
        self.requests += 1
        if self.poll_faults:
            raise self.poll_faults.pop(0)
        self.polls.append(now)
        answered = [p for p in self.posts if p.at + self.answer_after <= now]
        replies = [
            Message(f"r{p.id}", p.text.split()[0][1:], self.answer_text,
                    p.at + self.answer_after, p.id, p.id)
            for p in answered if cursor is None or iso(p.at) > cursor
        ]
        newest = max((iso(p.at) for p in answered), default=cursor)
        return Poll(replies, newest, now)
