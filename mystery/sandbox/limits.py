"""Rate-limit bookkeeping: how the sandbox says "not now" the way X does.

Why rate limits are counted but not enforced by default: the headers must be there on every
response (clients read them), but a 10,000-probe benchmark would otherwise spend its time
waiting. Windows are 15 minutes of *virtual* time, aligned to the epoch, so ``x-rate-limit-reset``
is a virtual-clock instant the runner can sleep until.

Why the response's ``Date`` is on the virtual clock too (rather than resets rewritten onto the
wall clock): a reset and the ``Date`` beside it must be on one clock, or a client that waits
until the reset waits a wrong time. Of the two ways to agree, only this one keeps mystery's own
channels right: they hand the reset (X's and Bluesky's epoch seconds, Mastodon's ISO 8601) to
the runner as an instant, and in a sandbox run the runner's clock is the virtual clock, shared
in-process or advanced through ``/_sandbox/clock``. An unmodified client that allows for a server
clock unlike its own reads ``reset - Date`` and so waits exactly what is left of the window
(Mastodon.py does: it shifts the reset by ``time.time() - Date``). A client that compares the
reset with its own wall clock alone cannot wait right against a clock that moves only when
told, whichever clock the reset is written on.

Why per-route limits can be lowered: a test that wants the runner to meet a real 429 (and wait
for the named reset rather than hammer) sets e.g. three mention polls per window, then counts the
refusals (``refused``): one per window at most.

Injected faults live in :mod:`mystery.sandbox.faults`.
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import datetime

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
    "GET /2/dm_events": 15,
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
        self.overrides: dict[str, int] = {}
        self.refused: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._windows: dict[str, tuple[int, int]] = {}

    def limit(self, route: str) -> int:
        return self.overrides.get(route, LIMITS.get(route, 900))

    def hit(self, route: str, now: datetime) -> tuple[bool, dict[str, str]]:
        """Count one request; return whether it may proceed and the headers to send."""
        limit = self.limit(route)
        window = int(now.timestamp()) // WINDOW_SECONDS
        with self._lock:
            start, used = self._windows.get(route, (window, 0))
            if start != window:
                used = 0
            allowed = not self.enforce or used < limit
            if allowed:
                used += 1
            else:
                self.refused[route] += 1
            self._windows[route] = (window, used)
        return allowed, {
            "x-rate-limit-limit": str(limit),
            "x-rate-limit-remaining": str(max(0, limit - used)),
            "x-rate-limit-reset": str((window + 1) * WINDOW_SECONDS),
        }

    def reset(self) -> None:
        with self._lock:
            self._windows.clear()
            self.refused.clear()
