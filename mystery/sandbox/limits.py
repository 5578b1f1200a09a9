"""Rate-limit bookkeeping and injected faults: the ways the sandbox can say "not now".

Why rate limits are counted but not enforced by default: the headers must be there on every
response (clients read them), but a 10,000-probe benchmark would otherwise spend its time
waiting. Windows are 15 minutes of *virtual* time, aligned to the epoch, so ``x-rate-limit-reset``
is a virtual-clock instant the runner can sleep until.

Why faults are queued per route: a test says "the next two mention polls fail with 503" or "the
next post is created but its response is lost" and then watches the runner cope (DESIGN.md: 429
with reset headers, 5xx, timeouts, malformed bodies).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

WINDOW_SECONDS = 15 * 60

LIMITS: dict[str, int] = {
    "POST /2/tweets": 100,
    "GET /2/users/:id/mentions": 300,
    "GET /2/users/:id/tweets": 900,
    "GET /2/tweets/search/recent": 300,
    "GET /2/users/me": 75,
    "GET /2/users/:id": 900,
    "GET /2/users/by/username/:username": 900,
    "GET /2/users/by": 900,
    "GET /2/tweets/:id": 900,
    "GET /2/tweets": 900,
}
"""Per-user limits per 15-minute window (X's documented values)."""

TOO_MANY_REQUESTS = {
    "title": "Too Many Requests",
    "detail": "Too Many Requests",
    "type": "about:blank",
    "status": 429,
}


class RateLimits:
    """Counts requests per route and window; refuses past the limit only when ``enforce``."""

    def __init__(self, enforce: bool = False) -> None:
        self.enforce = enforce
        self._lock = threading.Lock()
        self._windows: dict[str, tuple[int, int]] = {}

    def hit(self, route: str, now: datetime) -> tuple[bool, dict[str, str]]:
        """Count one request; return whether it may proceed and the headers to send."""
        limit = LIMITS.get(route, 900)
        window = int(now.timestamp()) // WINDOW_SECONDS
        with self._lock:
            start, used = self._windows.get(route, (window, 0))
            if start != window:
                used = 0
            allowed = not self.enforce or used < limit
            if allowed:
                used += 1
            self._windows[route] = (window, used)
        return allowed, {
            "x-rate-limit-limit": str(limit),
            "x-rate-limit-remaining": str(max(0, limit - used)),
            "x-rate-limit-reset": str((window + 1) * WINDOW_SECONDS),
        }

    def reset(self) -> None:
        with self._lock:
            self._windows.clear()


FaultBody = Literal["problem", "malformed", "empty"]


@dataclass(frozen=True, slots=True)
class Fault:
    """An injected failure for the next ``times`` requests to ``route``.

    ``when="before"``: the request is not processed. ``when="after"``: it is processed (a post
    is created) and the response is replaced, the case that tests "never send twice".
    ``delay`` holds the response back for that many wall-clock seconds (client timeouts).
    """

    route: str
    status: int = 503
    times: int = 1
    body: FaultBody = "problem"
    when: Literal["before", "after"] = "before"
    delay: float = 0.0


class Faults:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: list[Fault] = []

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._queue.append(fault)

    def take(self, route: str) -> Fault | None:
        """The first pending fault for ``route``, used up by one."""
        with self._lock:
            for i, fault in enumerate(self._queue):
                if fault.route == route:
                    if fault.times <= 1:
                        del self._queue[i]
                    else:
                        self._queue[i] = replace(fault, times=fault.times - 1)
                    return fault
            return None

    def pending(self) -> list[Fault]:
        with self._lock:
            return list(self._queue)

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()
