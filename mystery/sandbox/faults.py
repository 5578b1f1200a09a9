"""Injected faults: the ways a test makes one route of the sandbox misbehave.

Why per route, scripted *and* probabilistic: a unit-sized test says "the next two mention polls
fail with 503" or "the next post is created but its answer is lost" and watches the runner cope;
a soak test says "a fifth of all posts answer slowly" (seeded, so a failure replays exactly).
Every fault kind DESIGN.md names is here:

=================  ===============================================================================
``body``           what the client gets
=================  ===============================================================================
``problem``        an X problem body with ``status`` (429 carries the rate-limit headers)
``malformed``      ``status`` with a truncated JSON body
``empty``          ``status`` with no body at all
``drop``           no answer: the connection is closed (a dropped connection)
``pass``           the real answer, only late (``delay``): a slow platform or, past the client's
                   timeout, a timeout
``duplicate``      the real answer with every item of ``data`` twice
``out_of_order``   the real answer with ``data`` shuffled (seeded)
``bad_items``      the real answer plus items no client should trust (no id, a bad id, ``null``)
``renamed``        the real answer in the field names of X's v2.167 spec (``referenced_posts``,
                   ``edit_history_post_ids``): what a client must read as well as the old ones
``surrogate``      the real answer with half an emoji (a lone ``\\ud83d``) ending every text, as
                   clients that cut a string in UTF-16 send it
=================  ===============================================================================

``when="before"``: a failing fault answers without doing the work; ``"after"``: the work is done
(a post *is* created) and the answer replaced, the case behind "never send twice". ``delay``
holds the answer back that many wall-clock seconds, before or after the work.
"""

from __future__ import annotations

import json
import random
import threading
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any, Literal

FaultBody = Literal[
    "problem", "malformed", "empty", "drop", "pass", "duplicate", "out_of_order", "bad_items",
    "renamed", "surrogate",
]
FAULT_BODIES: tuple[FaultBody, ...] = (
    "problem", "malformed", "empty", "drop", "pass", "duplicate", "out_of_order", "bad_items",
    "renamed", "surrogate",
)  # fmt: skip
PASS_THROUGH: frozenset[str] = frozenset(
    {"pass", "duplicate", "out_of_order", "bad_items", "renamed", "surrogate"})
RENAMED = {
    "referenced_tweets": "referenced_posts",
    "edit_history_tweet_ids": "edit_history_post_ids",
}
"""X's v2.167 names for the fields of a post (research/platforms.md §1.4)."""
"""Kinds that let the request do its work and answer with its (changed) real response."""

BAD_ITEMS: list[Any] = [
    {"text": "an item without an id", "edit_history_tweet_ids": []},
    {"id": "not-a-number", "text": "an item with a bad id"},
    None,
    "a bare string",
]


@dataclass(frozen=True, slots=True)
class Fault:
    """A failure for requests to ``route``.

    ``times`` is how often it may fire (``None``: without end); ``probability`` the chance it
    fires on a given request (drawn from ``random.Random(seed)``, so a run replays); ``skip``
    lets that many requests through untouched first (e.g. "the third post fails").
    ``rate_headers=False`` sends a 429 without ``x-rate-limit-*`` (a platform that forgets).
    """

    route: str
    status: int = 503
    times: int | None = 1
    body: FaultBody = "problem"
    when: Literal["before", "after"] = "before"
    delay: float = 0.0
    probability: float = 1.0
    seed: int = 0
    skip: int = 0
    rate_headers: bool = True

    @property
    def passes_through(self) -> bool:
        return self.body in PASS_THROUGH

    def view(self) -> dict[str, Any]:
        return {
            "route": self.route,
            "status": self.status,
            "times": self.times,
            "body": self.body,
            "when": self.when,
            "delay": self.delay,
            "probability": self.probability,
            "seed": self.seed,
            "skip": self.skip,
            "rate_headers": self.rate_headers,
        }


@dataclass(slots=True)
class _Armed:
    """A fault with its remaining count, requests still to skip and its own generator."""

    fault: Fault
    left: int | None
    skip: int
    rng: random.Random = field(repr=False)


class Faults:
    """The pending faults, in the order they were added; the first that fires wins."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._armed: list[_Armed] = []
        self.fired: Counter[str] = Counter()

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._armed.append(
                _Armed(fault, fault.times, fault.skip, random.Random(f"fault\x1f{fault.seed}"))
            )

    def take(self, route: str) -> tuple[Fault, random.Random] | None:
        """The fault that fires on this request to ``route`` (used up by one), if any, with the
        generator a pass-through fault shuffles with."""
        with self._lock:
            for i, armed in enumerate(self._armed):
                if armed.fault.route != route:
                    continue
                if armed.skip > 0:
                    armed.skip -= 1
                    continue
                if armed.fault.probability < 1.0 and armed.rng.random() >= armed.fault.probability:
                    continue
                if armed.left is not None:
                    armed.left -= 1
                    if armed.left <= 0:
                        del self._armed[i]
                self.fired[f"{route} {armed.fault.body}"] += 1
                return armed.fault, armed.rng
            return None

    def pending(self) -> list[Fault]:
        with self._lock:
            return [replace(a.fault, times=a.left, skip=a.skip) for a in self._armed]

    def clear(self) -> None:
        with self._lock:
            self._armed.clear()


def transform(body: bytes, fault: Fault, rng: random.Random) -> bytes:
    """The real answer changed as a pass-through fault says (``pass`` leaves it alone)."""
    if fault.body == "pass" or not body:
        return body
    try:
        value = json.loads(body)
    except ValueError:
        return body
    data = value.get("data") if isinstance(value, dict) else None
    if not isinstance(data, list):
        return body
    if fault.body == "duplicate":
        value["data"] = [item for item in data for _ in (0, 1)]
    elif fault.body == "out_of_order":
        shuffled = list(data)
        rng.shuffle(shuffled)
        value["data"] = shuffled
    elif fault.body == "bad_items":
        value["data"] = [*data[:1], *BAD_ITEMS, *data[1:]]
    elif fault.body == "renamed":
        value["data"] = [{RENAMED.get(k, k): v for k, v in item.items()}
                         if isinstance(item, dict) else item for item in data]
    elif fault.body == "surrogate":
        for item in data:
            if isinstance(item, dict) and isinstance(item.get("text"), str):
                item["text"] += "\ud83d"
        # Only an ASCII body can carry a lone surrogate: it is not a character UTF-8 can hold.
        return json.dumps(value, separators=(",", ":")).encode()
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
