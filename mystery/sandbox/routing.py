"""Route templates, what every handler gets to work with, and request counting.

Why templates such as ``GET /2/users/:id/mentions``: the same string names the route in the
route table, in ``/_sandbox/stats`` and in the rate-limit table, so a test can assert "the runner
polled mentions 12 times" without knowing ids.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from mystery.sandbox.faults import Faults
from mystery.sandbox.limits import RateLimits
from mystery.sandbox.runners import Runners
from mystery.sandbox.web import Request, Response
from mystery.sandbox.world import World


class Stats:
    """Requests per route template since start (or the last reset)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def count(self, route: str) -> None:
        with self._lock:
            self._counts[route] += 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(sorted(self._counts.items()))

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()


@dataclass
class Quirks:
    """Documented behaviours of X that differ in ways a client must survive, switched on by tests.

    ``mentions_beyond_reach``: what a mentions request whose ``since_id`` lies beyond the 800
    reachable mentions gets. ``"oldest"`` (default): the newest 800, as if ``since_id`` were the
    oldest reachable id (tweepy's docstring); ``"empty"``: "a successful response with no data"
    (X's integration guide). A client must notice the missed mentions either way.
    """

    mentions_beyond_reach: str = "oldest"


@dataclass
class Context:
    """The sandbox as a handler sees it."""

    world: World
    stats: Stats = field(default_factory=Stats)
    limits: RateLimits = field(default_factory=RateLimits)
    faults: Faults = field(default_factory=Faults)
    quirks: Quirks = field(default_factory=Quirks)
    runners: Runners = field(default_factory=Runners)


Handler = Callable[[Context, Request], Response]


@dataclass(frozen=True)
class Route:
    """``method`` plus a path template with ``:name`` parameters; ``x`` routes need auth and
    carry rate-limit headers, control routes do neither; a route that is not ``locked`` runs
    outside the world's lock (and takes it itself where it needs it)."""

    method: str
    template: str
    handler: Handler
    x: bool = True
    locked: bool = True
    pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        regex = re.sub(r":(\w+)", r"(?P<\1>[^/]+)", self.template)
        object.__setattr__(self, "pattern", re.compile(f"^{regex}$"))

    @property
    def name(self) -> str:
        return f"{self.method} {self.template}"
