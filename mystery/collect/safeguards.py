"""Runtime safeguards: what may not be sent *now*, even though the plan says it is due.

The plan already spaces a brand's probes ``min_gap`` apart; these rules hold for what actually
happens, which can differ (a runner down for a day sends its backlog late; a researcher posts
a manual probe an hour after it fell due). They protect the brands and the researcher's
account, and keep every reply attributable:

- **one open probe per brand per channel**: a brand is not asked again on a channel while an
  earlier probe there is unsettled (or shown to the researcher and not yet posted). This also
  makes a reply with no thread link (an X direct message) belong to one probe unambiguously;
- **min gap**: at least ``schedule.min_gap`` between a brand's actual sends, on any channel
  (a send under way counts from its attempt);
- **daily cap**: at most ``daily_cap`` posts per account in any 24 hours (each of a channel's
  accounts has its own; the other two rules hold per brand, whichever account asks).

A probe held back is not skipped: it is sent as soon as the rule allows, with a notice saying
why it waited. The rules apply where ``ChannelConfig.guarded`` (by default on real platforms,
not in the sandbox, whose demo runs unthrottled); an explicit ``daily_cap`` applies anywhere.

Several runners on one PostgreSQL study (one per account) may weigh the same brand at the same
moment: the store checks the brand's rules again, under a lock on the brand, in the very
transaction that records the intent to send (:meth:`~mystery.store.store.Store.begin_send`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from mystery.clock import iso, parse_iso
from mystery.store.store import ProbeRow, Store
from mystery.study.model import Study

DAY = timedelta(hours=24)


@dataclass(frozen=True)
class Hold:
    """Why a due probe waits, and until when (``None``: until an earlier probe settles)."""

    until: datetime | None
    reason: str


class Safeguards:
    def __init__(self, study: Study, store: Store) -> None:
        self.study = study
        self.store = store

    def hold(self, probe: ProbeRow, now: datetime) -> Hold | None:
        """The rule that keeps ``probe`` from going out at ``now``, if any."""
        config = self.study.channels[probe.channel]
        cap = config.posts_per_day
        if cap is not None:
            recent = [parse_iso(r[0]) for r in self.store.db.execute(
                "SELECT sent_at FROM probes WHERE channel = ? AND account = ? AND sent_at > ? "
                "ORDER BY sent_at", (probe.channel, probe.account, iso(now - DAY)))]
            if len(recent) >= cap:
                several = len(config.account_names) > 1
                by = f" by {probe.account}" if several else ""
                return Hold(recent[len(recent) - cap] + DAY,
                            f"{len(recent)} posts on {probe.channel}{by} in the last 24 hours "
                            f"reach the daily cap of {cap} (channels.{probe.channel}.daily_cap"
                            f"{', per account' if several else ''})")
        if not config.guarded:
            return None
        open_id = self.store.db.execute(
            "SELECT p.id FROM probes p LEFT JOIN awaiting a ON a.probe_id = p.id "
            "WHERE p.brand = ? AND p.channel = ? AND p.id != ? AND (p.state IN "
            "('sending', 'sent') OR (p.state = 'planned' AND a.shown_at IS NOT NULL)) LIMIT 1",
            (probe.brand, probe.channel, probe.id)).fetchone()
        if open_id is not None:
            return Hold(None, f"{probe.brand}'s probe {open_id[0]} on {probe.channel} is still "
                              "open (one open probe per brand per channel)")
        # A probe being sent (its intent committed, the post perhaps made) counts from its
        # attempt: another runner, on another channel, may be posting it this very moment.
        last = self.store.db.execute(
            "SELECT max(coalesce(p.sent_at, CASE WHEN p.state = 'sending' THEN (SELECT "
            "max(s.started_at) FROM send_attempts s WHERE s.probe_id = p.id) END)) "
            "FROM probes p WHERE p.brand = ? AND p.id != ?",
            (probe.brand, probe.id)).fetchone()[0]
        gap = self.study.schedule.min_gap
        if last is not None and now < parse_iso(last) + gap:
            return Hold(parse_iso(last) + gap,
                        f"{probe.brand} was last asked at {last[:16]} UTC, less than "
                        f"schedule.min_gap ago")
        return None
