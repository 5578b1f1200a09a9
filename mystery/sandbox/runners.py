"""The runners sharing a standalone sandbox's clock, and the barrier that keeps them fair.

Why a barrier: each runner jumps the virtual clock to its own next event. Alone, that is the
discrete-event clock (DESIGN.md). Several runners on one sandbox (a team study, one runner per
account) used to move it at the fastest one's pace: a runner that was still busy, or simply
slower, found the clock past the instant its next probe was planned for and sent it late (in
virtual time; its time was still the platform's own, so timings stayed exact, but the probe was
no longer sent when the plan said).

The rule: the clock advances only to the earliest instant every announced runner has asked for.
A runner that is working (it woke at an instant and has not asked for its next one yet) holds
the clock where it is; a runner waiting for ``t`` lets it go up to ``t``. That is the
conservative rule of parallel discrete-event simulation: no runner ever sees the clock pass an
instant at which it still had something to do.

Why a timeout: a runner that dies (SIGKILL, a lost laptop) says nothing. One silent for longer
than :attr:`Runners.timeout` seconds of wall time outside a clock request is dropped from the
barrier, so a dead runner does not freeze the world; a runner dropped only for being slow joins
again with its next request. A runner restarted for the same accounts replaces its dead
predecessor at once (runners are named by the accounts they serve).

Only announced runners are waited for: one that starts after the others have moved the clock
on begins at the present, and its probes planned before it go out late, as after a downtime.

The control plane's own clock moves (a test's ``advance_to`` without a runner) are not held: they
move the clock at once, as before, and wake the runners waiting.

The price: runners whose events fall at different instants no longer work at the same time, so
a team on one sandbox takes longer in wall time (the benchmark of three runners sharing 500
brands on X: 13.9 times as long as one runner serving one account, where without the barrier
it took 3.0 times as long). ``fair=False`` (``mystery sandbox --no-fair-clock``) gives the old
rule, each wait moving the clock at once, for benchmarks of a store's or a runner's throughput.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mystery.clock import iso, utc
from mystery.sandbox.world import World

log = logging.getLogger(__name__)

RUNNER_TIMEOUT = 10.0
"""Seconds of wall time a runner may stay silent, outside a clock request, before the barrier
stops waiting for it (``mystery sandbox --runner-timeout``)."""
LONG_POLL = 1.0
"""Seconds a clock request waits for the others before answering with the time reached so far
(the runner asks again): short, so a runner that stops asking is soon seen as silent."""
_TICK = 0.1
"""How often a waiting request looks for runners that went silent."""


@dataclass(slots=True)
class _Runner:
    name: str  # the accounts it serves, e.g. "mastodon:a@sandbox.example"
    wish: datetime  # the instant it asked for; at or before now while it works
    seen: float  # wall (monotonic) time of its last word
    waiting: int = 0  # its clock requests open right now


class Runners:
    """The announced runners of one sandbox, by id, and the barrier over them."""

    def __init__(self, timeout: float = RUNNER_TIMEOUT,
                 wall: Callable[[], float] = time.monotonic, *, fair: bool = True) -> None:
        self.timeout = timeout
        self.fair = fair
        self._wall = wall
        self._cond = threading.Condition()
        self._runners: dict[str, _Runner] = {}
        self.dropped: list[str] = []  # names of runners dropped for silence, oldest first

    def join(self, runner: str, name: str, world: World) -> datetime:
        """Announce ``runner`` (working, at the clock's now); one of the same ``name`` (the
        same accounts: a dead predecessor) is replaced."""
        with self._cond:
            if self.fair:
                self._join(runner, name, world)
            return world.now()

    def _join(self, runner: str, name: str, world: World) -> _Runner:
        for other in [k for k, r in self._runners.items() if r.name == name and k != runner]:
            del self._runners[other]
        entry = _Runner(name, world.now(), self._wall())
        self._runners[runner] = entry
        self._cond.notify_all()
        return entry

    def leave(self, runner: str, world: World) -> datetime:
        """``runner`` stops: the barrier no longer waits for it."""
        with self._cond:
            self._runners.pop(runner, None)
            self._advance(world)
            return world.now()

    def ask(self, runner: str, name: str, when: datetime, world: World,
            wait: float = LONG_POLL) -> datetime:
        """``runner`` waits for ``when``: the clock moves to the earliest instant every
        runner asked for; the answer is the clock's time once it reached ``when``, or after
        ``wait`` seconds, whichever comes first (ask again if it is still earlier)."""
        when = utc(when)
        deadline = self._wall() + wait
        if not self.fair:  # the old rule: every wait moves the clock at once
            with world.lock:
                return world.advance_to(when)
        with self._cond:
            entry = self._runners.get(runner)
            if entry is None:  # dropped while slow, or new: it is asking, so it is alive
                entry = self._join(runner, name, world)
            entry.wish = when
            entry.waiting += 1
            try:
                while True:
                    self._expire()
                    self._advance(world)
                    left = deadline - self._wall()
                    if world.now() >= when or left <= 0:
                        return world.now()
                    self._cond.wait(min(left, _TICK))
            finally:
                entry.waiting -= 1
                entry.seen = self._wall()

    def moved(self) -> None:
        """The clock was moved by someone else (the control plane): wake the waiting."""
        with self._cond:
            self._cond.notify_all()

    def view(self) -> dict[str, Any]:
        """Who the barrier waits for, and until when (``GET /_sandbox/runners``)."""
        with self._cond:
            return {
                "fair": self.fair,
                "timeout": self.timeout,
                "runners": [
                    {"name": r.name, "asked_for": iso(r.wish), "waiting": r.waiting > 0}
                    for r in self._runners.values()
                ],
                "dropped": list(self.dropped),
            }

    def _advance(self, world: World) -> None:
        if not self._runners:
            return
        target = min(r.wish for r in self._runners.values())
        if target > world.now():
            with world.lock:  # never while a platform request is being answered
                world.advance_to(target)
            self._cond.notify_all()

    def _expire(self) -> None:
        now = self._wall()
        for key, entry in list(self._runners.items()):
            if entry.waiting == 0 and now - entry.seen > self.timeout:
                del self._runners[key]
                self.dropped.append(entry.name)
                log.warning("sandbox clock: runner %s silent for %.0f s, no longer waited for",
                            entry.name, now - entry.seen)
