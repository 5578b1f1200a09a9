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

from mystery.sandbox.limits import Faults, RateLimits
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
class Context:
    """The sandbox as a handler sees it."""

    world: World
    stats: Stats = field(default_factory=Stats)
    limits: RateLimits = field(default_factory=RateLimits)
    faults: Faults = field(default_factory=Faults)


Handler = Callable[[Context, Request], Response]


@dataclass(frozen=True)
class Route:
    """``method`` plus a path template with ``:name`` parameters; ``x`` routes need auth and
    carry rate-limit headers, control routes do neither."""

    method: str
    template: str
    handler: Handler
    x: bool = True
    pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        regex = re.sub(r":(\w+)", r"(?P<\1>[^/]+)", self.template)
        object.__setattr__(self, "pattern", re.compile(f"^{regex}$"))

    @property
    def name(self) -> str:
        return f"{self.method} {self.template}"
