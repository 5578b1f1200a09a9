"""What a study will cost on X's pay-per-use API, estimated from its plan before it runs.

X charges for its API since 2026 (research/platforms.md §1.2, from X's pricing page,
docs.x.com/x-api/getting-started/pricing, as of August 2026):

================================  ===========  ======================================
item                              price (USD)  what mystery does that costs it
================================  ===========  ======================================
Post: Create                      0.015        a probe posted through the API
Post: Create (with URL)           0.200        the same, when the text holds a link
Owned Reads                       0.001        each post returned by our own mentions
                                               (``GET /2/users/{id}/mentions``) or our
                                               own timeline (``GET /2/users/{id}/tweets``)
Posts: Read                       0.005        each post returned by recent search, used
                                               only to catch up after a gap (§1.4 B)
DM Event: Read                    0.010        each direct-message event returned (not in
                                               platforms.md: X's pricing page)
================================  ===========  ======================================

Owned Reads are priced so only when the account whose mentions are read also owns the developer
app; read through someone else's app, the same posts cost $0.005 each (Posts: Read).
Reads are charged per resource *returned*, not per request, so a poll that returns nothing
costs nothing (platforms.md §7.4): polling often is free, answers are what cost. X also
deduplicates a resource read twice within one UTC day, but calls that a soft guarantee; the
estimate and the run's ledger (:class:`~mystery.channels.x_billing.Spend`) ignore it, so both
err high. Mastodon, Bluesky, email and the hand-logged channels have no API charges; neither has
the sandbox.

:func:`estimate` prices a study's plan before it runs. Its assumptions, each stated in the
line it shapes:

- *posts*: X probes in ``auto`` or ``confirm`` mode are posted through the API, one charge
  each (at the URL price when the text holds a link). ``manual`` probes are posted by the
  researcher from their own app, which X does not charge, but the runner then finds each one on
  our own timeline: at most one check per ``poll_every`` during the channel's ``grace``, and
  each check is counted as returning one post (a ceiling: in practice the probe is found at the
  first check after it is posted).
- *replies*: the mentions timeline, read with ``since_id``, returns each reply once;
  ``replies_per_probe`` (default 2: an acknowledgement and a resolution) per probe. The polls
  themselves are listed at $0 to show that their number does not matter.
- *DMs* (``read_dms``): ``dms_per_probe`` (default 1) new events per probe; one event per UTC
  day of collection, since the DM events endpoint has no ``since_id`` and each quiet poll reads
  the newest event again, which X charges again on each new UTC day (and only then: this relies
  on X's deduplication); and a first poll that reads a page of
  :data:`mystery.channels.x_dms.DM_PAGE` events of the inbox's history.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from mystery.channels.x_billing import X_PRICES, has_url, usd
from mystery.study.model import Study
from mystery.words import AUTOMATED_CHANNELS, CHANNELS

if TYPE_CHECKING:
    from mystery.study.plan import PlannedProbe

__all__ = ["Estimate", "LineItem", "estimate"]

REPLIES_PER_PROBE = 2
"""Replies assumed per X probe: an acknowledgement and a resolution."""
DMS_PER_PROBE = 1
"""Direct-message events assumed per X probe when ``read_dms`` is on ("we've sent you a DM")."""

@dataclass(frozen=True)
class LineItem:
    """One priced line of an estimate: how many of what, at what unit price, and why so many."""

    channel: str
    item: str
    count: int
    unit_usd: Decimal
    basis: str

    @property
    def total_usd(self) -> Decimal:
        return self.unit_usd * self.count


@dataclass(frozen=True)
class Estimate:
    """A study's expected API spend, line by line, against ``channels.x.budget_usd``.

    ``sandbox``: the study's X channel is the sandbox, which charges nothing; the lines are
    still priced as the real X would price them, for a dry run of a real study."""

    items: tuple[LineItem, ...]
    budget_usd: Decimal | None
    sandbox: bool
    replies_per_probe: int
    dms_per_probe: int

    @property
    def total_usd(self) -> Decimal:
        return sum((i.total_usd for i in self.items), Decimal(0))

    @property
    def over_budget(self) -> bool:
        return self.budget_usd is not None and self.total_usd > self.budget_usd

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types; dollars as numbers."""
        return {
            "total_usd": float(self.total_usd),
            "budget_usd": None if self.budget_usd is None else float(self.budget_usd),
            "over_budget": self.over_budget,
            "sandbox": self.sandbox,
            "assumptions": {"replies_per_probe": self.replies_per_probe,
                            "dms_per_probe": self.dms_per_probe},
            "items": [
                {"channel": i.channel, "item": i.item, "count": i.count,
                 "unit_usd": float(i.unit_usd), "total_usd": float(i.total_usd),
                 "basis": i.basis}
                for i in self.items
            ],
        }


def _checks(span: timedelta, every: timedelta) -> int:
    """Polls at one per ``every`` over ``span``, at least one."""
    return max(1, math.ceil(span / every))


def _x_items(study: Study, probes: Sequence[PlannedProbe], replies_per_probe: int,
             dms_per_probe: int) -> list[LineItem]:
    config = study.channels["x"]
    mode = config.send_mode
    n = len(probes)
    items: list[LineItem] = []
    if mode == "manual":
        checks = _checks(config.grace, config.poll_every)
        items.append(LineItem(
            "x", "own timeline reads (finding manual posts)", n * checks, X_PRICES.owned_read,
            f"{n} probes posted by hand (free) × at most {checks} checks each (one per "
            "poll_every during grace), 1 post per check",
        ))
    else:
        linked = sum(1 for p in probes if has_url(p.text))
        items.append(LineItem("x", "posts created", n - linked, X_PRICES.post,
                              f"{n - linked} probes posted by the runner (mode {mode})"))
        if linked:
            items.append(LineItem("x", "posts created with a URL", linked,
                                  X_PRICES.post_with_url, f"{linked} probes whose text has a link"))
    items.append(LineItem(
        "x", "mentions read (replies)", n * replies_per_probe, X_PRICES.owned_read,
        f"{n} probes × {replies_per_probe} replies each, each returned once",
    ))
    first = min(p.planned_at for p in probes)
    last = max(p.planned_at for p in probes) + study.cutoff
    if mode == "manual":
        last += config.grace
    polls = _checks(last - first, config.poll_every)
    items.append(LineItem(
        "x", "mentions polls", polls, Decimal(0),
        "one per poll_every until the last cutoff; X charges per post returned, so empty "
        "polls are free",
    ))
    if config.read_dms:
        from mystery.channels.x_dms import DM_PAGE  # the first poll's page (imports tweepy)

        days = (last.date() - first.date()).days + 1  # planned_at is UTC: UTC days
        items.append(LineItem(
            "x", "DM events read", n * dms_per_probe + days + DM_PAGE, X_PRICES.dm_event_read,
            f"{n} probes × {dms_per_probe} DM each, the newest event again on each of {days} "
            f"UTC days, and a first page of {DM_PAGE}",
        ))
    return items


def estimate(study: Study, plan: Sequence[PlannedProbe], *,
             replies_per_probe: int = REPLIES_PER_PROBE,
             dms_per_probe: int = DMS_PER_PROBE) -> Estimate:
    """Price ``plan`` (from :func:`mystery.study.plan.make_plan`) at X's rates; free channels get a
    $0 line each so the table shows every channel. Pure: no clock, no network."""
    items: list[LineItem] = []
    for channel in CHANNELS:
        probes = [p for p in plan if p.channel == channel]
        if channel not in study.channels or not probes:
            continue
        if channel == "x":
            items += _x_items(study, probes, replies_per_probe, dms_per_probe)
        else:
            how = "no API charges" if channel in AUTOMATED_CHANNELS else "hand-logged"
            items.append(LineItem(channel, "probes", len(probes), Decimal(0),
                                  f"{len(probes)} probes; {how}"))
    x = study.channels.get("x")
    budget = x.budget_usd if x is not None else None
    return Estimate(
        items=tuple(items),
        budget_usd=None if budget is None else usd(budget),
        sandbox=x is not None and x.is_sandbox,
        replies_per_probe=replies_per_probe,
        dms_per_probe=dms_per_probe,
    )
