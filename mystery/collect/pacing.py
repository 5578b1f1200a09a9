"""How the runner paces each channel: when it may next poll, send, check an uncertain send and
look for posts made by hand, and how long it waits after platform trouble.

Platform trouble: a 429 waits until the reset the platform names (a notice, never a silent
sleep, never hammering); 5xx, timeouts and dropped connections back off exponentially with
jitter, capped; a malformed answer is a notice and a retry; 401/403 stops that channel with the
credential to fix while the others go on.

Every part of the runner (sending, polling, a person in the loop, the budget) shares one
:class:`Pacing`, so that a channel stopped by one part is stopped for all, and the run's count
of retries is one number.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from mystery.channels.base import Channel
from mystery.durations import format_span
from mystery.errors import AuthError, ChannelError, RateLimited
from mystery.study.model import Study

BACKOFF_BASE = timedelta(seconds=2)
MAX_BACKOFF = timedelta(minutes=15)
RATE_LIMIT_FALLBACK = timedelta(minutes=1)
"""How long to wait after a 429 that names no reset (then backing off like any failure)."""
RECONCILE_MARGIN = timedelta(hours=1)
"""Our own timeline is searched from this long before the planned time: the platform's clock
and ours may disagree, and a post never precedes its plan by more."""


@dataclass
class Slot:
    """When a repeated action of a channel may next happen (None: nothing waits), and how
    many times in a row it has failed (the backoff's exponent)."""

    at: datetime | None = None
    failures: int = 0


Read = Literal["poll", "check", "detect"]
"""The reads the runner repeats until they succeed: polling for replies, checking an uncertain
send on our timeline, looking for posts made by hand."""


@dataclass
class ChannelState:
    """A channel's pacing: a slot for each repeated action, and whether it was stopped."""

    channel: Channel
    poll_every: timedelta
    poll: Slot = field(default_factory=Slot)
    send: Slot = field(default_factory=Slot)
    check: Slot = field(default_factory=Slot)  # an uncertain send, looked up on our timeline
    detect: Slot = field(default_factory=Slot)  # posts the researcher made by hand
    stopped: str | None = None  # why the channel was stopped, if it was
    rate_limit: tuple[str, datetime] | None = None  # the last 429: what it refused, until when

    def slot(self, read: Read) -> Slot:
        return {"poll": self.poll, "check": self.check, "detect": self.detect}[read]


class Pacing:
    """The pacing of every channel of one run, and what they share: the jitter's random
    source, the count of retries, and where notices go."""

    def __init__(self, study: Study, channels: Mapping[str, Channel],
                 on_notice: Callable[[str], None], seed: int) -> None:
        self.channels = {
            name: ChannelState(channel, study.channels[name].poll_every)
            for name, channel in channels.items()
        }
        self.on_notice = on_notice
        self._rng = random.Random(seed)  # jitter only; never affects what is measured
        self.retries = 0  # failed requests retried later (5xx, timeouts, malformed answers, 429s)

    def live(self) -> list[tuple[str, ChannelState]]:
        return [(n, s) for n, s in self.channels.items() if not s.stopped]

    def backoff(self, failures: int) -> timedelta:
        """Exponential, with jitter (so restarted clients do not retry in step), capped."""
        base: timedelta = min(MAX_BACKOFF, BACKOFF_BASE * 2 ** min(failures - 1, 20))
        jittered = base * (0.5 + self._rng.random())
        return min(MAX_BACKOFF, timedelta(milliseconds=round(jittered / timedelta(milliseconds=1))))

    def rate_limited(self, name: str, doing: str, exc: RateLimited, now: datetime,
                     failures: int) -> datetime:
        """When to try again after a 429: the reset the platform named, else a backoff."""
        self.retries += 1
        if exc.reset_at is not None and exc.reset_at > now:
            until = exc.reset_at
        else:
            until = now + max(RATE_LIMIT_FALLBACK, self.backoff(failures))
        if name in self.channels:
            self.channels[name].rate_limit = (doing, until)  # for the live view's countdown
        self.on_notice(f"{name}: rate limited while {doing}; waiting until "
                       f"{until:%Y-%m-%d %H:%M:%S} UTC ({format_span(until - now)})")
        return until

    def failed(self, name: str, state: ChannelState, read: Read, exc: ChannelError,
               now: datetime, doing: str, retrying: str) -> None:
        """One policy for every failed read: a 429 waits for the named reset, 401/402/403
        stops the channel, anything else backs off with ``retrying`` as the notice (its
        ``{delay}``, if any, becomes the wait)."""
        slot = state.slot(read)
        if isinstance(exc, RateLimited):
            slot.at = self.rate_limited(name, doing, exc, now, slot.failures + 1)
        elif isinstance(exc, AuthError):
            self.stop(name, str(exc))
        else:
            self.retries += 1
            slot.failures += 1
            delay = self.backoff(slot.failures)
            slot.at = now + delay
            self.on_notice(retrying.replace("{delay}", format_span(delay)))

    def uncertain(self, state: ChannelState, now: datetime) -> None:
        """A post whose fate is unknown: hold the channel's sends (backing off), and look it up
        on our timeline once the platform could show it. Counts as a retry."""
        self.retries += 1
        state.send.failures += 1
        state.send.at = now + self.backoff(state.send.failures)
        state.check.at = now + state.channel.visibility_lag

    def stop(self, name: str, why: str) -> None:
        self.channels[name].stopped = why
        self.on_notice(f"{name}: stopped: {why}")
