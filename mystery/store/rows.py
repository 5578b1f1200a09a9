"""The records a store hands out, and how a row of its tables becomes one.

Times come back as aware UTC datetimes (they are stored as ISO 8601 text, ``mystery.clock.iso``).
Modules that read a store's tables in their own queries (``mystery.collect.ledger``) build the same
records with :data:`PROBE_COLS` and :func:`probe_row`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mystery.clock import parse_iso
from mystery.words import Outcome, ProbeState


@dataclass(frozen=True)
class ProbeRow:
    id: str
    brand: str
    channel: str
    question: str
    text: str
    planned_at: datetime
    state: ProbeState
    message_id: str | None
    sent_at: datetime | None
    outcome: Outcome | None
    account: str = ""  # the researcher's account it is (to be) sent from


@dataclass(frozen=True)
class ReplyRow:
    """A brand's reply as recorded, attributed to one probe."""

    channel: str
    message_id: str
    probe_id: str
    author: str
    text: str
    created_at: datetime
    in_reply_to: str | None
    conversation_id: str | None
    auto_code: str


@dataclass(frozen=True)
class Flag:
    """Why a probe was excluded (see ``mystery.store.migrations._m002_flags``)."""

    probe_id: str
    kind: str
    reason: str
    flagged_at: datetime


@dataclass(frozen=True)
class Counts:
    planned: int
    sent: int
    acknowledged: int
    resolved: int
    unanswered: int
    settled: int


@dataclass(frozen=True)
class HandEntry:
    """One thing a researcher logged by hand (``mystery.collect.handlog`` builds these)."""

    probe_id: str
    event: str  # sent | reply | gave_up
    at: datetime  # UTC, whole minutes
    source: str  # "prompt" or "<file> row <n>"
    message_id: str = ""  # sent: the probe's stand-in id; reply: the reply's
    code: str = ""  # reply: acknowledgement | resolution
    author: str = ""  # reply: the brand's contact point
    text: str = ""  # reply: the researcher's note
    outcome: str = ""  # gave_up: answered | unanswered


PROBE_COLS = (
    "id, brand, channel, question, text, planned_at, state, message_id, sent_at, outcome, "
    "account"
)
"""The columns of ``probes`` that :func:`probe_row` reads, in its order."""


def probe_row(row: tuple[Any, ...]) -> ProbeRow:
    return ProbeRow(
        id=row[0], brand=row[1], channel=row[2], question=row[3], text=row[4],
        planned_at=parse_iso(row[5]), state=row[6], message_id=row[7],
        sent_at=opt_time(row[8]), outcome=row[9], account=row[10],
    )


def opt_time(value: str | None) -> datetime | None:
    return parse_iso(value) if value else None
