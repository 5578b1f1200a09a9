"""What X charges, and the ledger of what a run has spent there.

X charges for its API since 2026 (research/platforms.md §1.2, from X's pricing page, as of
August 2026): $0.015 a post created ($0.200 with a link), $0.001 each post returned by our own
mentions or timeline (Owned Reads), $0.005 each post returned by recent search, $0.010 each
direct-message event returned. Reads are charged per resource *returned*, not per request, so a
poll that returns nothing costs nothing. X also deduplicates a resource read twice within one
UTC day, but calls that a soft guarantee; :class:`Spend` ignores it, so it errs high.

Why inside ``channels``: the X channel bills every answer it reads into a :class:`Spend` as it
reads it, and must not reach up into the study package for that; the estimate of a whole plan
(:mod:`mystery.study.cost`) builds on these prices instead.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

__all__ = ["X_PRICES", "ReadKind", "Spend", "XPrices", "has_url", "usd"]

# X turns a scheme, "www." or a bare domain with a common top-level domain into a link; erring
# towards "has a link" only ever raises an estimate or a ledger.
_URL = re.compile(
    r"https?://|\bwww\.|\b[a-z0-9-]+\.(?:com|net|org|io|co|uk|ly|me|app|shop|store|info|biz)\b",
    re.IGNORECASE,
)


def has_url(text: str) -> bool:
    """Whether X would price a post of ``text`` as one with a URL."""
    return _URL.search(text) is not None


@dataclass(frozen=True)
class XPrices:
    """X's pay-per-use prices in US dollars (research/platforms.md §1.2, August 2026)."""

    post: Decimal = Decimal("0.015")
    post_with_url: Decimal = Decimal("0.200")
    owned_read: Decimal = Decimal("0.001")
    post_read: Decimal = Decimal("0.005")
    dm_event_read: Decimal = Decimal("0.010")

    def of_post(self, text: str) -> Decimal:
        return self.post_with_url if has_url(text) else self.post


X_PRICES = XPrices()

ReadKind = Literal["owned", "post", "dm"]


@dataclass
class Spend:
    """The runner's ledger of what a run has cost on X: posts created and resources returned.

    Counts rather than dollars, so that a ledger saved as ``spend.counts()`` and restored as
    ``Spend.from_counts(saved)`` is priced again with today's table. Every resource returned is
    counted, including ones the channel then skips as unusable: X charges for them too. :meth:`read`
    counts every resource: X's once-per-UTC-day deduplication is not applied, so the ledger errs
    high (see the module docstring).
    """

    posts: int = 0
    posts_with_url: int = 0
    owned_reads: int = 0
    post_reads: int = 0
    dm_event_reads: int = 0
    prices: XPrices = field(default=X_PRICES, compare=False, repr=False)
    #: The counts as last saved to (or read from) the store: what this ledger added since is
    #: :meth:`unsaved`, the part another runner's saved total does not hold yet.
    saved: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_counts(cls, counts: Mapping[str, int]) -> Spend:
        """A ledger saved as :meth:`counts`, priced with today's table."""
        spend = cls()
        spend.settle(counts)
        return spend

    def unsaved(self) -> dict[str, int]:
        """What was spent since the counts were last saved or read (:meth:`settle`)."""
        return {k: v - self.saved.get(k, 0) for k, v in self.counts().items()}

    def settle(self, total: Mapping[str, int]) -> None:
        """Take ``total`` (the store's counts, this ledger's unsaved part added) as both the
        ledger and what is saved."""
        self.posts, self.posts_with_url = total.get("posts", 0), total.get("posts_with_url", 0)
        self.owned_reads, self.post_reads = total.get("owned_reads", 0), total.get("post_reads", 0)
        self.dm_event_reads = total.get("dm_event_reads", 0)
        self.saved = self.counts()

    def counts(self) -> dict[str, int]:
        """The ledger without its price table, to store and restore."""
        return {"posts": self.posts, "posts_with_url": self.posts_with_url,
                "owned_reads": self.owned_reads, "post_reads": self.post_reads,
                "dm_event_reads": self.dm_event_reads}

    def posted(self, text: str) -> Decimal:
        """Record one post of ``text`` created through the API; its price."""
        if has_url(text):
            self.posts_with_url += 1
        else:
            self.posts += 1
        return self.prices.of_post(text)

    def read(self, count: int, kind: ReadKind = "owned") -> Decimal:
        """Record ``count`` resources returned by a read; their price. ``kind``: ``owned``
        (our mentions, our own timeline), ``post`` (recent search), ``dm`` (DM events)."""
        if count < 0:
            raise ValueError(f"a read returns no fewer than 0 resources, not {count}")
        if kind == "owned":
            self.owned_reads += count
            return self.prices.owned_read * count
        if kind == "post":
            self.post_reads += count
            return self.prices.post_read * count
        self.dm_event_reads += count
        return self.prices.dm_event_read * count

    @property
    def total_usd(self) -> Decimal:
        p = self.prices
        return (p.post * self.posts + p.post_with_url * self.posts_with_url
                + p.owned_read * self.owned_reads + p.post_read * self.post_reads
                + p.dm_event_read * self.dm_event_reads)

    def remaining(self, budget: float | Decimal | None) -> Decimal | None:
        """What is left of ``budget`` (negative once past it); None without a budget."""
        return None if budget is None else usd(budget) - self.total_usd

    def over(self, budget: float | Decimal | None) -> bool:
        """Whether the spend has reached ``budget`` (``channels.x.budget_usd``); never without
        one. To ask before a post: ``spend.remaining(b) < spend.prices.of_post(text)``."""
        left = self.remaining(budget)
        return left is not None and left <= 0


def usd(value: float | Decimal) -> Decimal:
    # str() first: Decimal(0.1) is 0.1000000000000000055511151231257827...
    return value if isinstance(value, Decimal) else Decimal(str(value))
