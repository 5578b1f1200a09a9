"""What a run reports while it goes: the facts a live view draws, never the drawing.

The runner hands a :class:`Progress` to its ``on_progress`` callback before each wait and once
more when it stops (``final``). Everything the runner knows only in memory — its next event,
the probes a safeguard holds back, a rate limit it waits out — travels in the object; whatever
the store holds (the counts) is read from the store only when asked, so a display that draws
ten times a second pays for ten queries a second, not for one per pass of a fast virtual run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from mystery.store.store import Counts, Store

EventKind = Literal["send", "resume", "poll", "check", "look"]
"""What the runner does next: send a planned (or held) probe, resume sending after a refusal,
poll for replies, check an uncertain send on our timeline, look for posts made by hand."""


@dataclass(frozen=True)
class Event:
    """The runner's next event, on the study's clock (``probe_id`` for a send)."""

    at: datetime
    kind: EventKind
    channel: str
    probe_id: str | None = None


@dataclass(frozen=True)
class Wait:
    """A rate limit being waited out: a user must see it counting down, or they think the run
    hung (a silent sleep is the classic complaint about research CLIs)."""

    channel: str
    doing: str  # "posting", "polling", …: what the platform refused
    until: datetime


@dataclass(frozen=True)
class Progress:
    """Where a run stands. ``now`` is the study's clock: virtual in the sandbox (``virtual``),
    the real time otherwise; ``timezone`` is the study's, for showing it."""

    now: datetime
    store: Store
    stopped_channels: tuple[str, ...] = ()
    timezone: str = "UTC"
    virtual: bool = False
    next_event: Event | None = None
    waits: tuple[Wait, ...] = ()
    held: Mapping[str, int] = field(default_factory=dict)  # channel -> probes a safeguard holds
    final: bool = False  # the run's last report: its counts are the run's result

    def counts(self) -> Counts:
        return self.store.counts()

    def channel_counts(self) -> dict[str, Counts]:
        return self.store.channel_counts()

    def other_runners(self) -> list[str]:
        """The team's other runners on this study (a PostgreSQL store), one line each."""
        return self.store.other_runners()

    def expected_end(self) -> datetime | None:
        """When the study should be over: the plan's last send plus the cutoff, after which
        every probe is settled (answered or not). ``None`` when nothing is left to send."""
        last = self.store.last_send_at()
        return None if last is None else last + self.store.cutoff()
