"""Catching up after downtime: what a channel adds when its platform only looks back so far.

A study runs for weeks on a laptop; when the laptop sleeps for a day, the next poll must still
find every reply posted meanwhile (DESIGN.md rule 4). Most platforms page back as far as the
cursor, but X's mentions timeline reaches only the 800 most recent mentions. A channel with such
a horizon returns a :class:`GappedPoll` naming the stretch it could not read, and offers a second
way into a probe's thread (:class:`ThreadSearch`, X's recent search by ``conversation_id``). The
runner then searches the open probes' threads, and whatever even that cannot reach is *flagged*:
such a probe is excluded with its reason, never silently counted unanswered (rule 2).

An extension of :mod:`mystery.channels.base`, kept apart so channels without a horizon need
nothing of it: the runner checks for it with ``isinstance``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from mystery.channels.base import Message, Poll


@dataclass(frozen=True)
class Gap:
    """Messages created after ``after`` and before ``before`` may be missing from a poll."""

    after: datetime
    before: datetime


@dataclass(frozen=True)
class GappedPoll(Poll):
    """A poll that could not reach back to its cursor."""

    gap: Gap | None = None


@dataclass(frozen=True)
class Thread:
    """Replies found in one probe's thread, complete for everything created after
    ``complete_after`` (older ones are beyond the platform's search horizon)."""

    messages: list[Message]
    complete_after: datetime


@runtime_checkable
class ThreadSearch(Protocol):
    def thread(self, root_id: str, now: datetime) -> Thread:
        """Every message in the thread started by our post ``root_id`` that is not our own."""
        ...
