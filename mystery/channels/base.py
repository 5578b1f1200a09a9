"""The channel contract: what the runner may ask of any platform.

A channel knows one platform's wire format and nothing about studies, stores or time-keeping:

- ``send(outgoing)`` posts a probe and returns the platform's id and *the platform's* time;
- ``find_sent(outgoing, since)`` looks for a probe among the researcher's own posts. It serves
  two cases with one mechanism: reconciling a send that crashed half-way (rule 3), and a
  ``manual`` probe that the researcher posted by hand from their own app;
- ``poll(cursor)`` returns the replies addressed to the researcher since ``cursor`` and the new
  cursor; the runner commits both together (rule 4).

Channels never sleep and never retry a post: the runner owns time and pacing. A platform's
"wait" (HTTP 429) is raised as :class:`mystery.errors.RateLimited` for the runner to honour.

What only some platforms can do is an optional capability, a ``runtime_checkable`` Protocol
the runner asks with ``isinstance``: :class:`OwnPosts` (look up one of our posts by id, for
``mystery sent``), :class:`Billed` (a ledger of what the platform charges), and
:class:`~mystery.channels.catchup.ThreadSearch` (search a thread, to catch up after a gap).
:class:`~mystery.channels.memory.MemoryChannel` is a whole platform in memory that keeps the
contract, for tests and for trying the runner without a server.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from mystery.text import well_formed

if TYPE_CHECKING:
    from mystery.channels.x_billing import Spend


@dataclass(frozen=True)
class Outgoing:
    """A probe as the channel must post it."""

    probe_id: str
    handle: str  # the brand's handle on this channel, without '@'
    text: str  # the question text, rendered for the brand

    def compose(self) -> str:
        """The exact text posted: one mention of the brand, then the question.

        Also the detail by which a post is recognised on our own timeline (reconciliation and
        manual posting), so it must be unique per probe; the plan guarantees distinct texts per
        brand.
        """
        return f"@{self.handle} {self.text}"


@dataclass(frozen=True)
class Sent:
    message_id: str
    sent_at: datetime  # the platform's own timestamp, UTC
    text: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "text", well_formed(self.text))


@dataclass(frozen=True)
class Message:
    """A message addressed to the researcher, as the platform reported it."""

    message_id: str
    author: str  # handle, without '@'
    text: str
    created_at: datetime  # the platform's own timestamp, UTC
    in_reply_to: str | None
    conversation_id: str | None
    # Sent by a machine (email ``Auto-Submitted`` and kin): an acknowledgement, not a human one.
    automatic: bool = False
    # The sender's own claim of when it was sent (email ``Date``): kept, never used for timing.
    claimed_at: datetime | None = None
    # A direct message (X DMs): outside any thread, so ``in_reply_to`` and ``conversation_id``
    # are None and the runner attributes it by brand and time instead.
    direct: bool = False
    # In reply to one of the researcher's own posts (X: ``in_reply_to_user_id`` is ours): one
    # whose id the store does not know may be an edit of a probe (see :class:`EditHistory`).
    to_us: bool = False

    def __post_init__(self) -> None:
        """Platform text as it can be stored: no lone surrogates (:func:`well_formed`)."""
        object.__setattr__(self, "text", well_formed(self.text))
        object.__setattr__(self, "author", well_formed(self.author))


@dataclass(frozen=True)
class Poll:
    messages: list[Message]
    cursor: str | None
    # Every message created up to this instant has been returned: probes whose cutoff lies
    # before it can be settled. Never later than the moment the poll began.
    complete_through: datetime
    requests: int = 1
    warnings: list[str] = field(default_factory=list)


class Channel(Protocol):
    name: str
    # How long after creation a message may take to show up in ``poll`` on this platform.
    visibility_lag: timedelta

    @property
    def requests(self) -> int:
        """Requests made to the platform so far (the run's figures)."""
        ...

    @property
    def skipped(self) -> int:
        """Items the platform sent that could not be used (counted, never silently dropped)."""
        ...

    def open(self) -> None:
        """Authenticate and look up accounts; raises AuthError with the credential to fix."""

    def brand_authors(self, handles: list[str]) -> None:
        """Tell the channel which handles are brand accounts (for platforms that match by id)."""

    def send(self, outgoing: Outgoing) -> Sent: ...

    def find_sent(self, outgoing: Outgoing, since: datetime) -> Sent | None: ...

    def poll(self, cursor: str | None, now: datetime) -> Poll: ...

    def close(self) -> None:
        """Release connections."""


@runtime_checkable
class OwnPosts(Protocol):
    """A platform where one of our posts can be looked up by its id (``mystery sent``)."""

    def fetch_own(self, message_id: str) -> Sent | None:
        """Our own post ``message_id`` with the platform's time, or None when the platform has
        none or it is not ours."""
        ...


@runtime_checkable
class Billed(Protocol):
    """A platform that charges per request or resource (X): the channel bills each answer
    into ``spend`` as it reads it; the runner saves and restores it, and keeps it to budget."""

    spend: Spend


@runtime_checkable
class EditHistory(Protocol):
    """A platform where a post can be edited into a new id (X): the ids of every version."""

    def edit_history(self, post_id: str) -> list[str]:
        """Every version's id of our own post ``post_id``, oldest first (just ``post_id`` when
        it was never edited); empty when it is not ours or not there."""
        ...
