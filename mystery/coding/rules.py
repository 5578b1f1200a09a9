"""Which reply acknowledges a probe and which resolves it: automatic rules plus manual codes.

The acknowledgement is the first reply from the brand. The resolution is the first reply that
*answers*: a holding message ("please DM us", "we'll look into it") acknowledges but does not
resolve. The automatic rule below is a first pass; researchers correct it with ``mystery code``,
and a manual code always wins. Times are computed here, from platform timestamps only, and only
replies within the cutoff count (later ones are recorded but the probe is censored at the cutoff).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from mystery.words import Code

CODES: tuple[Code, ...] = ("acknowledgement", "resolution", "not_brand")

# Phrases customer-service teams use when they acknowledge without answering. Deliberately
# conservative: a false "holding" only delays resolution until a human codes it.
_HOLDING = re.compile(
    r"\b(dm|d\.m\.|direct message|private message|message us|drop us a message|"
    r"send us (?:a|your)|look into (?:this|it)|get back to you|passed (?:this|it) on|"
    r"bear with us|we'?ll check|let us check|follow (?:us|back)|contact (?:us|our team)|"
    r"call us|email us)\b",
    re.IGNORECASE,
)


def auto_code(text: str) -> Code:
    """The automatic code of a brand reply: ``acknowledgement`` for a holding message."""
    return "acknowledgement" if _HOLDING.search(text) else "resolution"


class _Reply(Protocol):
    @property
    def channel(self) -> str: ...
    @property
    def message_id(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def auto_code(self) -> str: ...


@dataclass(frozen=True)
class ProbeTimes:
    """Seconds from sending to acknowledgement and to resolution; None = not within cutoff."""

    ack: float | None
    resolution: float | None


def probe_times(
    sent_at: datetime,
    replies: Iterable[_Reply],
    codes: Mapping[tuple[str, str], str],
    cutoff: timedelta,
) -> ProbeTimes:
    ack: float | None = None
    resolution: float | None = None
    limit = cutoff.total_seconds()
    for reply in sorted(replies, key=lambda r: (r.created_at, r.message_id)):
        code = codes.get((reply.channel, reply.message_id), reply.auto_code)
        if code == "not_brand":
            continue
        # Clamp at zero: a platform clock can put a reply a few ms before the probe it
        # answers; a negative response time would be nonsense.
        elapsed = max(0.0, (reply.created_at - sent_at).total_seconds())
        if elapsed > limit:
            break
        if ack is None:
            ack = elapsed
        if code == "resolution":
            resolution = elapsed
            break
    return ProbeTimes(ack, resolution)
