"""Compare what a run recorded with the sandbox's ground truth, to the millisecond.

Why a library function rather than test code: it is the one definition of "the run got it
right" behind the end-to-end, crash and fault tests (each post made once, each probe timed from
the platform's own clock, each acknowledgement and resolution exactly when the simulated brand
posted it, censored at the cutoff), and a dry run can use it as its proof too.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mystery.clock import parse_iso
from mystery.timings.export import timing_rows

if TYPE_CHECKING:
    from mystery.store.store import Store


def _expected(at: str | None, sent_at: datetime, cutoff: float) -> float | None:
    if at is None:
        return None
    seconds = (parse_iso(at) - sent_at).total_seconds()
    return seconds if seconds <= cutoff else None


def mismatches(truth: dict[str, Any], store: Store, *, excluded: frozenset[str] = frozenset(),
               channel: str = "x", read_dms: bool = True) -> list[str]:
    """Every way the store disagrees with ``truth`` (``GET /_sandbox/posts``) on ``channel``;
    empty when the run is exact. ``excluded`` lists probe ids allowed to be excluded (and
    required to be: an exclusion is a claim that needs its proof). Without ``read_dms`` a
    probe a brand resolved by direct message must have no resolution: the run could not see it."""
    problems: list[str] = []
    by_dm = {r["probe"] for r in truth["replies"] if r.get("direct")}
    posts = [p for p in truth["posts"] if p.get("channel", "x") == channel]
    for text, times in Counter(p["text"] for p in posts).items():
        if times > 1:
            problems.append(f"posted {times} times: {text!r}")
    probes = {p.message_id: p for p in store.probes() if p.channel == channel and p.message_id}
    planned = [p for p in store.probes() if p.channel == channel]
    unsent = [p.id for p in planned if p.message_id is None]
    if unsent:
        problems.append(f"never sent: {', '.join(unsent)}")
    # A timing row names no probe; brand, question and sent time do (a brand may be asked
    # twice in one millisecond when a runner catches up on a shared sandbox's clock).
    rows = {(r["brand"], r["question"], r["sent_at"]): r for r in timing_rows(store)
            if r["channel"] == channel}
    cutoff = store.cutoff().total_seconds()
    seen_excluded: set[str] = set()
    for post in posts:
        probe = probes.get(post["id"])
        if probe is None:
            problems.append(f"post {post['id']} ({post['text']!r}) is no probe's message")
            continue
        if probe.sent_at != parse_iso(post["created_at"]):
            problems.append(f"{probe.id}: sent_at {probe.sent_at} but posted {post['created_at']}")
            continue
        row = rows.get((probe.brand, probe.question, probe.sent_at))
        if row is None:
            problems.append(f"{probe.id}: no timing row (state {probe.state})")
            continue
        if row["status"] == "excluded":
            seen_excluded.add(probe.id)
            if probe.id not in excluded:
                problems.append(f"{probe.id}: excluded unexpectedly")
            continue
        if probe.id in excluded:
            problems.append(f"{probe.id}: should be excluded but is {row['status']}")
        fate = post.get("fate") or {}
        ack = _expected(fate.get("ack_at"), probe.sent_at, cutoff)
        resolution = _expected(fate.get("resolution_at"), probe.sent_at, cutoff)
        if not read_dms and post["id"] in by_dm:
            resolution = None
        status = "answered" if ack is not None else "unanswered"
        got = (row["status"], row["ack_seconds"], row["resolution_seconds"])
        if got != (status, ack, resolution):
            problems.append(f"{probe.id}: recorded {got}, truth {(status, ack, resolution)}")
    return problems
