"""Time for the runner and the sandbox: the real clock, or a virtual one that jumps.

Why a jumping (discrete-event) clock rather than a sped-up one: a seven-day study must finish in
seconds, deterministically, whatever the machine's speed. The runner asks the clock to
``sleep_until`` its next event (a due send, a poll); a virtual clock simply moves there. The
runner owns time: channels never sleep (DESIGN.md, channel contract).

Times are always timezone-aware UTC datetimes.

X post ids are snowflakes, whose top bits carry the creation time in milliseconds: here too,
since they are a clock. This is why mystery takes X times from ids and not from
``created_at`` (which the API rounds to ``.000``): ``(id >> 22) + epoch`` is the platform's own
clock to the millisecond.
"""

from __future__ import annotations

import threading
import time as _time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol


def utc(dt: datetime) -> datetime:
    """Refuse naive datetimes: a naive time in a timing study is a bug waiting to happen."""
    if dt.tzinfo is None:
        raise ValueError(f"naive datetime {dt!r}; use an aware UTC time")
    return dt.astimezone(UTC)


def iso(dt: datetime) -> str:
    """UTC ISO 8601 with milliseconds and a Z, the one textual time format mystery writes."""
    return utc(dt).strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc(dt).microsecond // 1000:03d}Z"


def parse_iso(text: str) -> datetime:
    return utc(datetime.fromisoformat(text.replace("Z", "+00:00")))


class Clock(Protocol):
    def now(self) -> datetime: ...

    def sleep_until(self, when: datetime) -> None: ...


class RealClock:
    """Wall-clock UTC. Sleeps in short slices so Ctrl-C is honoured promptly."""

    def __init__(self, on_wait: Callable[[datetime], None] | None = None) -> None:
        self._on_wait = on_wait

    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep_until(self, when: datetime) -> None:
        while (remaining := (utc(when) - self.now()).total_seconds()) > 0:
            if self._on_wait is not None:
                self._on_wait(when)
            _time.sleep(min(remaining, 1.0))


class VirtualClock:
    """A clock that only moves when told to, and only forwards. Thread-safe: the sandbox's
    HTTP threads read it while the runner advances it."""

    def __init__(self, start: datetime) -> None:
        self._now = utc(start)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def sleep_until(self, when: datetime) -> None:
        with self._lock:
            self._now = max(self._now, utc(when))

    def set(self, when: datetime) -> None:
        """Force the time (used when a sandbox world is created); never moves backwards."""
        self.sleep_until(when)


# -- X post ids: snowflakes ----------------------------------------------------------------

TWITTER_EPOCH_MS = 1288834974657  # 2010-11-04T01:42:54.657Z
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def snowflake_ms(post_id: str | int) -> int:
    return (int(post_id) >> 22) + TWITTER_EPOCH_MS


def snowflake_time(post_id: str | int) -> datetime:
    return datetime.fromtimestamp(snowflake_ms(post_id) / 1000, tz=UTC)


def make_snowflake(when: datetime, worker: int = 1, sequence: int = 0) -> int:
    """The id a post created at ``when`` gets (the sandbox's generator)."""
    ms = (when - _EPOCH) // timedelta(milliseconds=1)
    return ((ms - TWITTER_EPOCH_MS) << 22) | ((worker & 0x3FF) << 12) | (sequence & 0xFFF)
