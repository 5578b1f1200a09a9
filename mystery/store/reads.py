"""Reading a store: every query that changes nothing, for the runner, analysis and coding.

:class:`StoreReads` is the base of :class:`~mystery.store.store.Store`, which adds opening, the
transactions and every write; a caller opens a ``Store`` and reads through it. Kept apart so
that the store's module is about what must be crash-safe (the writes), and this one about what
a store holds: probes by state, send attempts, replies and cursors, codes, and the summaries
analysis reads through :func:`mystery.timings.export.timing_rows`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from copy import copy
from datetime import datetime, timedelta
from typing import Self

from mystery.clock import iso, parse_iso
from mystery.errors import StoreError
from mystery.store.address import StoreAddress
from mystery.store.connection import Db, Dialect
from mystery.store.migrations import MAIN_CODER
from mystery.store.rows import PROBE_COLS, Counts, Flag, ProbeRow, ReplyRow, opt_time, probe_row
from mystery.words import ProbeState


def _in_time(dialect: Dialect) -> str:
    """The replies that count, each with the code that counts (the main coder's, else the
    automatic one), as :func:`mystery.coding.rules.probe_times` counts them: within the probe's
    cutoff (or until the researcher gave up waiting), for a probe that was sent and not
    excluded. Times are ISO 8601 text with milliseconds, so the database's own time arithmetic
    (SQLite's ``strftime('%f')``, PostgreSQL's ``to_char``) makes the deadline in the same form
    and a string comparison is exact to the millisecond."""
    cutoff = "(SELECT value FROM meta WHERE key = 'cutoff_seconds')"
    return f"""
WITH main AS (SELECT value AS coder FROM meta WHERE key = ?),
gave_up AS (SELECT probe_id, min(at) AS at FROM hand_log WHERE event = 'gave_up'
            GROUP BY probe_id),
open AS MATERIALIZED (
    SELECT p.id, p.channel,
           {dialect.least}({dialect.deadline("p.sent_at", cutoff)},
               coalesce(g.at, '9999')) AS deadline
    FROM probes p LEFT JOIN gave_up g ON g.probe_id = p.id
    WHERE p.sent_at IS NOT NULL AND coalesce(p.outcome, '') != 'excluded'
),
in_time AS (
    SELECT o.id AS probe_id, o.channel AS channel, coalesce(c.code, r.auto_code) AS code
    FROM open o JOIN replies r ON r.probe_id = o.id AND r.created_at <= o.deadline
    LEFT JOIN codes c ON c.channel = r.channel AND c.message_id = r.message_id
                      AND c.coder = (SELECT coder FROM main)
)
"""



def marks(values: list[str]) -> str:
    """``?, ?, ?`` for ``values``; ``NULL`` for none, which matches nothing (PostgreSQL, unlike
    SQLite, refuses an empty ``IN ()``)."""
    return ",".join("?" * len(values)) or "NULL"


_SETTLED = "sum(CASE WHEN state = 'settled' THEN 1 ELSE 0 END)"
_UNANSWERED = "sum(CASE WHEN outcome = 'unanswered' THEN 1 ELSE 0 END)"


class StoreReads:
    """The read-only queries of one study's store (see :class:`~mystery.store.store.Store`)."""

    def __init__(self, db: Db, path: StoreAddress) -> None:
        self.db = db
        self.path = path
        # The accounts served on each channel (channel → accounts) when a runner serves some
        # accounts only (one lane of a runner, ``mystery run --account``); empty: every
        # probe. See :meth:`serve`.
        self.serving: dict[str, tuple[str, ...]] = {}

    def serve(self, accounts: Mapping[str, str | Sequence[str]]) -> None:
        """Narrow the runner's queries to the probes of ``accounts`` (channel → the account,
        or accounts, served there): a channel's probes due, sending, sent, open, expired or
        next planned, and where a direct message belongs. Everything else (counts, exports, a
        brand's other probes that the safeguards weigh) still sees the whole study. Why here
        rather than in each caller: a runner that saw another account's ``sending`` probe would
        look for it on its own timeline, not find it, and send it again."""
        self.serving = {channel: (names,) if isinstance(names, str) else tuple(names)
                        for channel, names in accounts.items()}

    def serving_only(self, accounts: Mapping[str, str]) -> Self:
        """This store, on the same connection, serving ``accounts`` instead: one per lane of
        a runner that serves several accounts of a channel (:mod:`mystery.collect.together`),
        each lane's queries narrowed to its own account, their transactions one after another
        on one connection (no second SQLite writer, no second PostgreSQL session)."""
        view = copy(self)
        view.serve(accounts)
        return view

    def _served(self) -> tuple[str, list[str]]:
        """The SQL condition (with its arguments) for the served accounts' probes."""
        if not self.serving:
            return "", []
        items = sorted(self.serving.items())
        terms = " OR ".join(f"(channel = ? AND account IN ({marks(list(names))}))"
                            for _, names in items)
        return f" AND ({terms})", [v for channel, names in items for v in (channel, *names)]

    # -- study -----------------------------------------------------------------------------

    def meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def cutoff(self) -> timedelta:
        return timedelta(seconds=float(self.required_meta("cutoff_seconds")))

    def required_meta(self, key: str) -> str:
        value = self.meta(key)
        if value is None:
            raise StoreError(f"{self.path} holds no study yet; run 'mystery run' first")
        return value

    # -- probes ----------------------------------------------------------------------------

    def probes(self, state: ProbeState | None = None, channel: str | None = None) -> list[ProbeRow]:
        sql = f"SELECT {PROBE_COLS} FROM probes WHERE 1=1"
        args: list[str] = []
        if state is not None:
            sql += " AND state = ?"
            args.append(state)
        if channel is not None:  # a channel's probes: the served account's (see serve)
            served, more = self._served()
            sql += " AND channel = ?" + served
            args += [channel, *more]
        return [probe_row(r) for r in self.db.execute(sql + " ORDER BY planned_at, id", args)]

    def probes_by_id(self, ids: Iterable[str]) -> list[ProbeRow]:
        ids = list(ids)
        rows = self.db.execute(f"SELECT {PROBE_COLS} FROM probes WHERE id IN ({marks(ids)})",
                               ids)
        return [probe_row(r) for r in rows]

    def count(self, states: Iterable[ProbeState], channels: Iterable[str] | None = None) -> int:
        """How many probes are in any of ``states`` (on ``channels``)."""
        return int(self.db.execute(*self._state_query("count(*)", states, channels))
                   .fetchone()[0])

    def any_in(self, states: Iterable[ProbeState], channels: Iterable[str] | None = None) -> bool:
        """Whether any probe is in ``states``: stops at the first, so it is cheap every pass."""
        sql, args = self._state_query("1", states, channels)
        return self.db.execute(sql + " LIMIT 1", args).fetchone() is not None

    def _state_query(self, what: str, states: Iterable[ProbeState],
                     channels: Iterable[str] | None) -> tuple[str, list[str]]:
        args: list[str] = list(states)
        served, more = self._served()
        sql = f"SELECT {what} FROM probes WHERE state IN ({marks(args)}){served}"
        args += more
        if channels is not None:
            channels = list(channels)
            sql += f" AND channel IN ({marks(channels)})"
            args += channels
        return sql, args

    def expired(self, channel: str, sent_before: datetime) -> list[ProbeRow]:
        """Sent, unsettled probes on ``channel`` sent at or before ``sent_before``."""
        served, more = self._served()
        rows = self.db.execute(
            f"SELECT {PROBE_COLS} FROM probes WHERE state = 'sent' AND channel = ? "
            f"AND sent_at <= ?{served} ORDER BY sent_at, id",
            (channel, iso(sent_before), *more),
        )
        return [probe_row(r) for r in rows]

    def due_probes(self, now: datetime) -> list[ProbeRow]:
        served, more = self._served()
        rows = self.db.execute(
            f"SELECT {PROBE_COLS} FROM probes WHERE state = 'planned' AND planned_at <= ?"
            f"{served} ORDER BY planned_at, id",
            (iso(now), *more),
        )
        return [probe_row(r) for r in rows]

    def next_planned_at(self, channels: Iterable[str] | None = None,
                        after: datetime | None = None) -> datetime | None:
        """When the next planned probe (on ``channels``; due after ``after``) is due."""
        found = self.next_planned(channels, after)
        return None if found is None else found[1]

    def next_planned(self, channels: Iterable[str] | None = None,
                     after: datetime | None = None) -> tuple[str, datetime] | None:
        """The next planned probe (on ``channels``; due after ``after``): its id and when it is
        due, so that a display can name what the run waits for. One row off the index on
        (state, channel, planned_at): cheap enough for every pass of the runner."""
        sql, args = self._state_query("id, planned_at", ["planned"], channels)
        if after is not None:
            sql += " AND planned_at > ?"
            args.append(iso(after))
        row = self.db.execute(sql + " ORDER BY planned_at, id LIMIT 1", args).fetchone()
        return None if row is None else (str(row[0]), parse_iso(row[1]))

    def open_probes(self, channel: str, sent_before: datetime) -> list[ProbeRow]:
        """Sent, unsettled probes on ``channel`` sent before ``sent_before``."""
        served, more = self._served()
        rows = self.db.execute(
            f"SELECT {PROBE_COLS} FROM probes WHERE state = 'sent' AND channel = ? "
            f"AND sent_at < ?{served} ORDER BY sent_at, id",
            (channel, iso(sent_before), *more),
        )
        return [probe_row(r) for r in rows]

    # -- send attempts and flags -----------------------------------------------------------

    def attempts(self, probe_id: str) -> list[tuple[str, str | None, str | None]]:
        return list(
            self.db.execute(
                "SELECT started_at, outcome, detail FROM send_attempts WHERE probe_id = ? "
                "ORDER BY id",
                (probe_id,),
            )
        )

    def flags(self) -> list[Flag]:
        """Every excluded probe's reason, in probe order."""
        rows = self.db.execute(
            "SELECT probe_id, kind, reason, flagged_at FROM flags ORDER BY probe_id, kind"
        )
        return [Flag(r[0], r[1], r[2], parse_iso(r[3])) for r in rows]

    # -- what a run sent (rebuilding an in-process sandbox: mystery.collect.run) ---------------

    def sent_in_order(self, channels: Iterable[str]) -> list[tuple[ProbeRow, str]]:
        """Probes on ``channels`` the platform has, each with the text it received, in the
        order it received them: by platform time, then by the send attempt that made each
        (within one millisecond a platform hands out ids in that order)."""
        channels = list(channels)
        rows = self.db.execute(
            f"SELECT {PROBE_COLS}, coalesce(posted_text, text) FROM probes AS p "
            "WHERE message_id IS NOT NULL AND sent_at IS NOT NULL "
            f"AND channel IN ({marks(channels)}) ORDER BY sent_at, "
            "(SELECT max(a.id) FROM send_attempts AS a WHERE a.probe_id = p.id), id",
            channels,
        )
        return [(probe_row(r[:-1]), str(r[-1])) for r in rows]

    def last_instant(self, channels: Iterable[str]) -> datetime | None:
        """The latest instant of the run's clock this store recorded on ``channels``. The
        runner writes its clock's time with every send attempt, send, settling, poll and flag,
        so a run that died stood at least there, and had done nothing later that mattered: a
        rebuilt sandbox's clock starts there (:mod:`mystery.sandbox.replay`)."""
        channels = list(channels)
        some = marks(channels)
        on = f"probe_id IN (SELECT id FROM probes WHERE channel IN ({some}))"
        greatest = self.db.dialect.greatest
        row = self.db.execute(
            "SELECT max(t) FROM ("
            f"SELECT max({greatest}(started_at, coalesce(finished_at, ''))) AS t "
            f"FROM send_attempts WHERE {on} "
            f"UNION ALL SELECT max({greatest}(coalesce(sent_at, ''), coalesce(settled_at, ''))) "
            f"FROM probes WHERE channel IN ({some}) "
            f"UNION ALL SELECT max(recorded_at) FROM replies WHERE channel IN ({some}) "
            f"UNION ALL SELECT max(updated_at) FROM cursors WHERE channel IN ({some}) "
            f"UNION ALL SELECT max(flagged_at) FROM flags WHERE {on}) AS instants",
            channels * 5,
        ).fetchone()
        return opt_time(row[0] or None)

    # -- replies, cursors and codes --------------------------------------------------------

    def probe_for_thread(self, channel: str, message_ids: Iterable[str | None]) -> str | None:
        """The probe a thread belongs to: a probe's own message id, an edit of it (X), or a
        reply already recorded in its thread (a brand answering its own holding message)."""
        for mid in message_ids:
            if not mid:
                continue
            row = self.db.execute(
                "SELECT id FROM probes WHERE channel = ? AND message_id = ?", (channel, mid)
            ).fetchone() or self.db.execute(
                "SELECT probe_id FROM edits WHERE channel = ? AND message_id = ?", (channel, mid)
            ).fetchone() or self.db.execute(
                "SELECT probe_id FROM replies WHERE channel = ? AND message_id = ?",
                (channel, mid),
            ).fetchone()
            if row:
                return str(row[0])
        return None

    def latest_open_probe(self, channel: str, brand: str, before: datetime) -> str | None:
        """The latest probe of ``brand`` on ``channel`` sent before ``before`` and still open
        (``sent``): where a message outside any thread (a direct message) belongs."""
        served, more = self._served()
        row = self.db.execute(
            "SELECT id FROM probes WHERE state = 'sent' AND channel = ? AND brand = ? "
            f"AND sent_at < ?{served} ORDER BY sent_at DESC, id DESC LIMIT 1",
            (channel, brand, iso(before), *more),
        ).fetchone()
        return str(row[0]) if row else None

    def cursor(self, channel: str, account: str = "") -> tuple[str | None, datetime | None]:
        """Where ``account``'s last poll of ``channel`` left off, and what it covered."""
        row = self.db.execute(
            "SELECT value, polled_through FROM cursors WHERE channel = ? AND account = ?",
            (channel, account),
        ).fetchone()
        if row is None:
            return None, None
        return row[0], opt_time(row[1])

    def replies(self, probe_id: str | None = None) -> list[ReplyRow]:
        sql = (
            "SELECT channel, message_id, probe_id, author, text, created_at, in_reply_to, "
            "conversation_id, auto_code FROM replies"
        )
        rows = (
            self.db.execute(sql + " WHERE probe_id = ? ORDER BY created_at, message_id",
                            (probe_id,))
            if probe_id is not None
            else self.db.execute(sql + " ORDER BY probe_id, created_at, message_id")
        )
        return [
            ReplyRow(r[0], r[1], r[2], r[3], r[4], parse_iso(r[5]), r[6], r[7], r[8])
            for r in rows
        ]

    def replies_for(self, probe_ids: Iterable[str]) -> dict[str, list[ReplyRow]]:
        """Replies of many probes in one query, grouped by probe."""
        out: dict[str, list[ReplyRow]] = {}
        ids = list(probe_ids)
        for start in range(0, len(ids), 500):  # stay under SQLite's bound-parameter limit
            chunk = ids[start:start + 500]
            rows = self.db.execute(
                "SELECT channel, message_id, probe_id, author, text, created_at, in_reply_to, "
                f"conversation_id, auto_code FROM replies WHERE probe_id IN "
                f"({','.join('?' * len(chunk))}) ORDER BY created_at, message_id",
                chunk,
            )
            for r in rows:
                out.setdefault(r[2], []).append(
                    ReplyRow(r[0], r[1], r[2], r[3], r[4], parse_iso(r[5]), r[6], r[7], r[8])
                )
        return out

    def codes(self) -> dict[tuple[str, str], str]:
        """The main coder's manual codes (``mystery.coding.coders``), overriding the automatic code;
        other coders' codes are kept for agreement and never change the timings."""
        rows = self.db.execute(
            "SELECT channel, message_id, code FROM codes "
            "WHERE coder = (SELECT value FROM meta WHERE key = ?)", (MAIN_CODER,)
        )
        return {(r[0], r[1]): r[2] for r in rows}

    # -- summaries -------------------------------------------------------------------------

    def untouched(self) -> bool:
        """Whether nothing but the plan was ever recorded: no probe sent, excluded or
        settled, no reply, code or hand-logged entry."""
        return not self.db.execute(
            "SELECT EXISTS (SELECT 1 FROM probes WHERE state != 'planned' OR outcome IS NOT "
            "NULL) OR EXISTS (SELECT 1 FROM replies) OR EXISTS (SELECT 1 FROM codes) OR "
            "EXISTS (SELECT 1 FROM hand_log)"
        ).fetchone()[0]

    def counts(self) -> Counts:
        """Where the study stands, one outcome per probe, as ``timings.csv`` will say it: a
        probe is acknowledged (resolved) once a brand reply (coded resolution by the main
        coder, or automatically) arrived within its cutoff; a reply after the cutoff leaves it
        unanswered, never both."""
        planned, sent, settled, unanswered = self.db.execute(
            f"SELECT count(*), count(message_id), {_SETTLED}, {_UNANSWERED} FROM probes"
        ).fetchone()
        acknowledged, resolved = self.db.execute(
            _in_time(self.db.dialect)
            + "SELECT count(DISTINCT CASE WHEN code != 'not_brand' THEN probe_id END), "
            "count(DISTINCT CASE WHEN code = 'resolution' THEN probe_id END) FROM in_time",
            (MAIN_CODER,),
        ).fetchone()
        return Counts(planned, sent, acknowledged, resolved, unanswered or 0, settled or 0)

    def channel_counts(self) -> dict[str, Counts]:
        """:meth:`counts` per channel, in two queries: what the live view shows ten times a
        second, defined exactly as :meth:`counts`, so the channels add up to the total."""
        replied = {
            channel: (acknowledged, resolved)
            for channel, acknowledged, resolved in self.db.execute(
                _in_time(self.db.dialect) + "SELECT channel, "
                "count(DISTINCT CASE WHEN code != 'not_brand' THEN probe_id END), "
                "count(DISTINCT CASE WHEN code = 'resolution' THEN probe_id END) "
                "FROM in_time GROUP BY channel", (MAIN_CODER,))
        }
        rows = self.db.execute(
            f"SELECT channel, count(*), count(message_id), {_SETTLED}, {_UNANSWERED} "
            "FROM probes GROUP BY channel ORDER BY channel"
        )
        return {channel: Counts(planned, sent, *replied.get(channel, (0, 0)),
                                unanswered or 0, settled or 0)
                for channel, planned, sent, settled, unanswered in rows}

    def account_counts(self) -> dict[tuple[str, str], Counts]:
        """:meth:`counts` per channel and researcher account, defined exactly as
        :meth:`counts`: what ``mystery run`` reports per account of a team study."""
        replied = {
            (channel, account): (acknowledged, resolved)
            for channel, account, acknowledged, resolved in self.db.execute(
                _in_time(self.db.dialect) + "SELECT t.channel, p.account, "
                "count(DISTINCT CASE WHEN code != 'not_brand' THEN probe_id END), "
                "count(DISTINCT CASE WHEN code = 'resolution' THEN probe_id END) "
                "FROM in_time t JOIN probes p ON p.id = t.probe_id "
                "GROUP BY t.channel, p.account", (MAIN_CODER,))
        }
        rows = self.db.execute(
            f"SELECT channel, account, count(*), count(message_id), {_SETTLED}, {_UNANSWERED} "
            "FROM probes GROUP BY channel, account ORDER BY channel, account"
        )
        return {(channel, account): Counts(planned, sent,
                                           *replied.get((channel, account), (0, 0)),
                                           unanswered or 0, settled or 0)
                for channel, account, planned, sent, settled, unanswered in rows}

    def last_send_at(self) -> datetime | None:
        """The plan's last send (the time it went out, or is planned to): with the cutoff, when
        the study ends. Excluded probes never go out, so they do not count."""
        return opt_time(self.db.execute(
            "SELECT max(coalesce(sent_at, planned_at)) FROM probes "
            "WHERE outcome IS NULL OR outcome != 'excluded'"
        ).fetchone()[0])

    # -- codes by coder (mystery code) -----------------------------------------------------

    def code_rows(self) -> list[tuple[str, str, str, str, datetime]]:
        """Every manual code of every coder as (channel, message_id, code, coder, coded_at),
        oldest first: ``mystery code`` needs each coder's own codes (to resume, to export, to
        compare coders), not only the one that wins in :meth:`codes`."""
        rows = self.db.execute(
            "SELECT channel, message_id, code, coder, coded_at FROM codes "
            "ORDER BY coded_at, coder"
        )
        return [(r[0], r[1], r[2], r[3], parse_iso(r[4])) for r in rows]

    # -- hand-logged channels (mystery.collect.handlog) --------------------------------------------

    def gave_up(self) -> dict[str, datetime]:
        """Probe id → when the researcher stopped waiting for a reply (``mystery log``): such
        a probe is censored there, not at the cutoff, when it has no reply by then."""
        rows = self.db.execute(
            "SELECT probe_id, min(at) FROM hand_log WHERE event = 'gave_up' GROUP BY probe_id"
        )
        return {str(r[0]): parse_iso(r[1]) for r in rows}
