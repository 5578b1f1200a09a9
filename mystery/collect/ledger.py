"""Probes waiting for a person: the ``manual`` sending mode's ledger in the store.

On X, uninvited automated @mentions break the developer rules, so a real X study is posted by
the researcher from their own app: the runner *shows* a due probe, then looks for the post on
the researcher's own timeline (an owned read) and records the platform's id and time, exactly
as it reconciles an interrupted automatic send. ``mystery sent PROBE URL`` names the post
directly (for a post whose text was edited, or made while no runner was running); the runner
verifies the named post against the platform before it records anything, so every time still
comes from the platform, and the runner stays the only writer of a probe's state.

A waiting probe stays ``planned`` (polling goes on; rule 4 is kept by looking for manual posts
just before each poll of their channel). It leaves this ledger when its post is found, or when
the grace window passes without one: then it is *missed*, and moved to the next slot the
plan's rules allow (:mod:`mystery.study.reschedule`), or excluded with a flag when none is left.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from mystery.clock import iso
from mystery.collect.handoff import post_id_from_url
from mystery.errors import MysteryError
from mystery.store.connection import Db
from mystery.store.reads import marks
from mystery.store.rows import PROBE_COLS, ProbeRow, opt_time, probe_row
from mystery.store.store import Store
from mystery.study.model import Study

Held = TypeVar("Held")


@dataclass(frozen=True)
class Awaiting:
    """A planned probe the researcher was shown (``shown_at``), or named a post for."""

    probe: ProbeRow
    shown_at: datetime | None
    grace_until: datetime | None
    claimed_id: str | None
    claimed_url: str | None


class Ledger:
    """The ``awaiting`` table of one store (migration ``m004_awaiting``)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def waiting(self, channel: str | None = None) -> list[Awaiting]:
        """Planned probes that were shown or claimed, oldest due first.

        Asked several times a pass, so it must cost nothing when (as in most studies) nothing
        waits: CROSS JOIN makes SQLite walk the small awaiting table, not every planned probe."""
        sql = (f"SELECT {_cols('p')}, a.shown_at, a.grace_until, a.claimed_id, a.claimed_url "
               f"FROM awaiting a {self.store.db.dialect.join_walking_left} probes p "
               "ON p.id = a.probe_id "
               "WHERE p.state = 'planned'")
        args: list[str] = []
        if channel is not None:  # the served account's, like the store's other reads
            sql += " AND p.channel = ?"
            args.append(channel)
            served = self.store.serving.get(channel, ())
            if served:
                sql += f" AND p.account IN ({marks(list(served))})"
                args.extend(served)
        rows = self.store.db.execute(sql + " ORDER BY p.planned_at, p.id", args)
        n = len(PROBE_COLS.split(","))
        return [
            Awaiting(probe_row(r[:n]), opt_time(r[n]), opt_time(r[n + 1]), r[n + 2], r[n + 3])
            for r in rows
        ]

    def show(self, probe_id: str, now: datetime, grace_until: datetime,
             brand: tuple[str, Callable[[], Held | None]] | None = None) -> Held | None:
        """The researcher has been shown the probe; it must be posted by ``grace_until``.

        ``brand``: the brand and its safeguards' check, made again under the brand's lock on
        PostgreSQL (:meth:`~mystery.store.store.Store.check_brand`), as for an automatic
        send: two researchers must not be shown one brand at once. Its answer if it holds the
        probe back (then nothing is recorded)."""

        def record(db: Db) -> None:
            db.execute(
                "INSERT INTO awaiting (probe_id, shown_at, grace_until) VALUES (?, ?, ?) "
                "ON CONFLICT (probe_id) DO UPDATE SET shown_at = excluded.shown_at, "
                "grace_until = excluded.grace_until",
                (probe_id, iso(now), iso(grace_until)),
            )

        return self.store.checked(brand, record)

    def claim(self, probe_id: str, message_id: str, url: str, now: datetime) -> None:
        """``mystery sent``: the researcher says this post is the probe (to be verified)."""
        with self.store.transaction() as db:
            db.execute(
                "INSERT INTO awaiting (probe_id, claimed_id, claimed_url, claimed_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (probe_id) DO UPDATE SET "
                "claimed_id = excluded.claimed_id, claimed_url = excluded.claimed_url, "
                "claimed_at = excluded.claimed_at",
                (probe_id, message_id, url, iso(now)),
            )

    def drop_claim(self, probe_id: str) -> None:
        with self.store.transaction() as db:
            db.execute("UPDATE awaiting SET claimed_id = NULL, claimed_url = NULL, "
                       "claimed_at = NULL WHERE probe_id = ?", (probe_id,))

    def found(self, item: Awaiting, message_id: str, sent_at: datetime, text: str,
              now: datetime, how: str) -> bool:
        """Record the researcher's post (``how``: ``manual`` found on our timeline, or
        ``claimed`` by ``mystery sent``) with the platform's id and time. False when the probe
        was no longer planned (recorded meanwhile)."""
        with self.store.transaction() as db:
            updated = db.execute(
                "UPDATE probes SET state = 'sent', message_id = ?, sent_at = ?, posted_text = ? "
                "WHERE id = ? AND state = 'planned'",
                (message_id, iso(sent_at), text, item.probe.id),
            ).rowcount
            if updated:
                db.execute(
                    "INSERT INTO send_attempts (probe_id, started_at, finished_at, outcome, "
                    "detail) VALUES (?, ?, ?, ?, ?)",
                    (item.probe.id, iso(item.shown_at or now), iso(now), how, message_id),
                )
            db.execute("DELETE FROM awaiting WHERE probe_id = ?", (item.probe.id,))
        return bool(updated)

    def missed(self, item: Awaiting, slot: datetime | None, reason: str, now: datetime) -> None:
        """Not posted within the grace window: due again at ``slot``, or, with no slot left,
        excluded with a ``missed`` flag (data, never silently dropped)."""
        with self.store.transaction() as db:
            db.execute(
                "INSERT INTO send_attempts (probe_id, started_at, finished_at, outcome, detail) "
                "VALUES (?, ?, ?, 'missed', ?)",
                (item.probe.id, iso(item.shown_at or now), iso(now), reason),
            )
            db.execute("DELETE FROM awaiting WHERE probe_id = ?", (item.probe.id,))
            if slot is not None:
                db.execute("UPDATE probes SET planned_at = ? WHERE id = ? AND state = 'planned'",
                           (iso(slot), item.probe.id))
            else:
                Store.exclude_in(db, item.probe.id, "missed", reason, now)


def _cols(alias: str) -> str:
    return ", ".join(f"{alias}.{c.strip()}" for c in PROBE_COLS.split(","))


def record_claim(study: Study, store: Store, probe_id: str, url: str, now: datetime) -> str:
    """``mystery sent PROBE URL``: note that the researcher posted ``probe_id`` at ``url``.

    Only the post's id is taken from the URL; the runner verifies it with the platform (ours,
    mentions the brand) and records the platform's time. Returns the post id. Raises
    :class:`~mystery.errors.MysteryError` with the fix for every mistake."""
    if store.meta("study") != study.name:
        raise MysteryError(f"{store.path} belongs to study {store.meta('study')!r}, not "
                           f"{study.name!r}; pass the study's own --db")
    found = store.probes_by_id([probe_id])
    if not found:
        raise MysteryError(f"no probe {probe_id!r} in {store.path}; 'mystery plan' lists them "
                           "(ids look like p0001)")
    probe = found[0]
    mode = study.channels[probe.channel].send_mode if probe.channel in study.channels else ""
    if mode != "manual":
        raise MysteryError(
            f"{probe_id} is on {probe.channel}, whose mode is {mode!r}: the runner posts it "
            "itself. 'mystery sent' is for probes posted by hand (mode = \"manual\")"
        )
    if probe.state != "planned":
        when = f" at {probe.sent_at:%Y-%m-%d %H:%M:%S} UTC" if probe.sent_at else ""
        raise MysteryError(f"{probe_id} is already recorded as sent{when} "
                           f"({probe.channel} id {probe.message_id}); nothing to do")
    message_id = post_id_from_url(probe.channel, url)
    Ledger(store).claim(probe_id, message_id, url.strip(), now)
    return message_id
