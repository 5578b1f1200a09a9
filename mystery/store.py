"""The SQLite store of one study: what was planned, sent and answered, safely on disk.

Why SQLite with WAL and short explicit transactions: a study runs for weeks on a laptop and can
be killed at any instruction. Every state change the runner makes is one transaction, so after a
crash the store says exactly what happened up to the last commit (DESIGN.md rules 3 and 4):

- a probe moves ``planned → sending → sent → settled``; ``sending`` is written *before* the
  platform is asked to post, so a crash leaves a visible "uncertain" probe to reconcile rather
  than a silent double post;
- replies and the polling cursor that covers them are committed together;
- replies are keyed on the platform's message id, so recording them twice changes nothing.

Times are stored as UTC ISO 8601 text with milliseconds (``mystery.clock.iso``): sortable,
readable in any SQLite browser, and exact. The schema is versioned by named migrations applied
in order on open (the simonw/llm pattern), so a store survives upgrades of mystery.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from mystery.clock import iso, parse_iso
from mystery.coding import ProbeTimes, probe_times
from mystery.errors import StoreError
from mystery.plan import PlannedProbe
from mystery.study import Study


def _run_script(db: sqlite3.Connection, script: str) -> None:
    """Run DDL statements one by one: ``executescript`` would COMMIT our open transaction,
    and a migration must apply wholly or not at all."""
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)


def _m001_initial(db: sqlite3.Connection) -> None:
    _run_script(
        db,
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE probes (
            id TEXT PRIMARY KEY,
            brand TEXT NOT NULL,
            channel TEXT NOT NULL,
            question TEXT NOT NULL,
            text TEXT NOT NULL,
            planned_at TEXT NOT NULL,
            state TEXT NOT NULL DEFAULT 'planned'
                CHECK (state IN ('planned', 'sending', 'sent', 'settled')),
            message_id TEXT,
            sent_at TEXT,
            posted_text TEXT,
            settled_at TEXT,
            outcome TEXT CHECK (outcome IN ('answered', 'unanswered', 'excluded'))
        );
        CREATE INDEX probes_state ON probes (state, planned_at);
        CREATE INDEX probes_state_channel ON probes (state, channel, sent_at);
        CREATE UNIQUE INDEX probes_message ON probes (channel, message_id);
        CREATE TABLE send_attempts (
            id INTEGER PRIMARY KEY,
            probe_id TEXT NOT NULL REFERENCES probes (id),
            started_at TEXT NOT NULL,
            finished_at TEXT,
            outcome TEXT,
            detail TEXT
        );
        CREATE TABLE replies (
            channel TEXT NOT NULL,
            message_id TEXT NOT NULL,
            probe_id TEXT NOT NULL REFERENCES probes (id),
            author TEXT NOT NULL,
            text TEXT NOT NULL,
            created_at TEXT NOT NULL,
            in_reply_to TEXT,
            conversation_id TEXT,
            auto_code TEXT NOT NULL,
            recorded_at TEXT NOT NULL,
            PRIMARY KEY (channel, message_id)
        );
        CREATE INDEX replies_probe ON replies (probe_id, created_at);
        CREATE TABLE codes (
            channel TEXT NOT NULL,
            message_id TEXT NOT NULL,
            code TEXT NOT NULL CHECK (code IN ('acknowledgement', 'resolution', 'not_brand')),
            coder TEXT NOT NULL,
            coded_at TEXT NOT NULL,
            PRIMARY KEY (channel, message_id, coder)
        );
        CREATE TABLE cursors (
            channel TEXT PRIMARY KEY,
            value TEXT,
            polled_through TEXT,
            updated_at TEXT NOT NULL
        );
        """
    )


def _m002_flags(db: sqlite3.Connection) -> None:
    """Why a probe was excluded: a timing row only says ``excluded`` (its schema is fixed), so
    the reason lives here, one row per probe and kind (e.g. ``reach``: replies may lie beyond
    what the platform lets us look back over; ``not_sent``; ``rejected``).

    And two indexes the crash-safe runner reads on every send and every pass: a probe's send
    attempts, and the next planned probe of one channel."""
    _run_script(
        db,
        """
        CREATE INDEX send_attempts_probe ON send_attempts (probe_id, id);
        CREATE INDEX probes_channel_planned ON probes (state, channel, planned_at);
        CREATE TABLE flags (
            probe_id TEXT NOT NULL REFERENCES probes (id),
            kind TEXT NOT NULL,
            reason TEXT NOT NULL,
            flagged_at TEXT NOT NULL,
            PRIMARY KEY (probe_id, kind)
        );
        """
    )


def _m003_handlog(db: sqlite3.Connection) -> None:
    """Hand-logged channels (``mystery log``): whose clock timed a probe, and what the
    researcher entered. ``timing_source`` is ``platform`` (the platform's own timestamps, to
    the millisecond) or ``hand`` (typed or taken from the researcher's clock, to the minute),
    so method notes can say which figures rest on hand timing. ``hand_log`` keeps every entry
    with where it came from (a prompt, a CSV row) and when it was entered: the audit trail of
    times that no platform vouches for."""
    _run_script(
        db,
        """
        ALTER TABLE probes ADD COLUMN timing_source TEXT NOT NULL DEFAULT 'platform'
            CHECK (timing_source IN ('platform', 'hand'));
        CREATE TABLE hand_log (
            id INTEGER PRIMARY KEY,
            probe_id TEXT NOT NULL REFERENCES probes (id),
            event TEXT NOT NULL CHECK (event IN ('sent', 'reply', 'gave_up')),
            at TEXT NOT NULL,
            code TEXT NOT NULL DEFAULT '',
            source TEXT NOT NULL,
            logged_at TEXT NOT NULL,
            UNIQUE (probe_id, event, at, code)
        );
        """
    )


def _m004_awaiting(db: sqlite3.Connection) -> None:
    """Probes a person must post (``manual`` mode): when each was shown, until when the
    researcher has to post it (the grace window), and a post they named with ``mystery sent``
    for the runner to verify against the platform. A probe stays ``planned`` while it waits, so
    polling goes on; rows leave this table when the post is found or the probe is missed."""
    _run_script(
        db,
        """
        CREATE TABLE awaiting (
            probe_id TEXT PRIMARY KEY REFERENCES probes (id),
            shown_at TEXT,
            grace_until TEXT,
            claimed_id TEXT,
            claimed_url TEXT,
            claimed_at TEXT
        );
        """
    )


MAIN_CODER = "main_coder"
"""The meta key naming the coder whose codes drive the timings (``mystery.coders``)."""


def _m005_main_coder(db: sqlite3.Connection) -> None:
    """A store coded before the main-coder rule gets the coder of its earliest code as main
    coder, the default the rule gives a new store (``Store.set_codes``)."""
    db.execute("INSERT OR IGNORE INTO meta SELECT ?, coder FROM codes "
               "ORDER BY coded_at, coder LIMIT 1", (MAIN_CODER,))


MIGRATIONS: list[tuple[str, Callable[[sqlite3.Connection], None]]] = [
    ("m001_initial", _m001_initial),
    ("m002_flags", _m002_flags),
    ("m003_handlog", _m003_handlog),
    ("m004_awaiting", _m004_awaiting),
    ("m005_main_coder", _m005_main_coder),
]


@dataclass(frozen=True)
class ProbeRow:
    id: str
    brand: str
    channel: str
    question: str
    text: str
    planned_at: datetime
    state: str
    message_id: str | None
    sent_at: datetime | None
    outcome: str | None


@dataclass(frozen=True)
class ReplyRow:
    """A brand's reply as recorded, attributed to one probe."""

    channel: str
    message_id: str
    probe_id: str
    author: str
    text: str
    created_at: datetime
    in_reply_to: str | None
    conversation_id: str | None
    auto_code: str


@dataclass(frozen=True)
class Flag:
    """Why a probe was excluded (see ``_m002_flags``)."""

    probe_id: str
    kind: str
    reason: str
    flagged_at: datetime


@dataclass(frozen=True)
class Counts:
    planned: int
    sent: int
    acknowledged: int
    resolved: int
    unanswered: int
    settled: int


def _opt_time(value: str | None) -> datetime | None:
    return parse_iso(value) if value else None


class Store:
    """One study's store. Use :meth:`open`; every mutating method commits before returning."""

    def __init__(self, db: sqlite3.Connection, path: Path) -> None:
        self.db = db
        self.path = path
        # Sync each intent to send to disk (see begin_send). Off for the sandbox, whose world
        # a power cut ends too: there is no post on any platform to be sent twice.
        self.durable_intent = True

    # -- lifecycle -------------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | Path, *, create: bool = True) -> Store:
        path = Path(path)
        if not create and not path.exists():
            raise StoreError(
                f"no store at {path}; run 'mystery run' on the study first, or pass --db"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            # Owner-only from the first byte: the store holds reply texts and account details.
            fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
            os.close(fd)
        try:
            db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            # Look before touching: switching to WAL rewrites the file header, which must not
            # happen to another program's database.
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if tables and "migrations" not in tables:
                db.close()
                raise StoreError(
                    f"{path} is not a mystery store (an SQLite database of another program); "
                    "pass another --db"
                )
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = NORMAL")
            db.execute("PRAGMA foreign_keys = ON")
            db.execute("PRAGMA busy_timeout = 5000")
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{path} is not a mystery store ({exc}); pass another --db") from None
        store = cls(db, path)
        store._migrate()
        return store

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` … ``COMMIT``: all or nothing, and no other writer in between."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def _migrate(self) -> None:
        with self.transaction() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at TEXT)"
            )
            done = {row[0] for row in db.execute("SELECT name FROM migrations")}
            for name, migration in MIGRATIONS:
                if name not in done:
                    migration(db)
                    db.execute(
                        "INSERT INTO migrations VALUES (?, datetime('now'))", (name,)
                    )

    # -- study and plan --------------------------------------------------------------------

    def meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, items: dict[str, str]) -> None:
        with self.transaction() as db:
            db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", items.items())

    def initialise(self, study: Study, plan: Iterable[PlannedProbe]) -> bool:
        """Pin the store to a study and insert its plan; a no-op when already done.

        Returns True when the store was new. Refuses a store made for another study, or for a
        different version of this one: mixing plans would corrupt both. The digest is of the
        validated model, so editing comments or reordering keys in the file is harmless.
        """
        digest = study.digest
        existing = self.meta("study")
        if existing is not None:
            if existing != study.name:
                raise StoreError(
                    f"{self.path} belongs to study {existing!r}, not {study.name!r}; "
                    "pass a different --db"
                )
            if self.meta("study_digest") != digest:
                raise StoreError(
                    f"{self.path} was started from a different version of study "
                    f"{study.name!r}: the study file changed after the run began. Restore the "
                    "file (it is versioned), or start a new wave with another --db"
                )
            return False
        brands = {b.name: {"sector": b.sector, "country": b.country} for b in study.brands}
        with self.transaction() as db:
            db.executemany(
                "INSERT INTO meta VALUES (?, ?)",
                [
                    ("study", study.name),
                    ("series", study.series),
                    ("year", str(study.year)),
                    ("cutoff_seconds", str(study.cutoff.total_seconds())),
                    ("study_digest", digest),
                    ("brands", json.dumps(brands, sort_keys=True)),
                ],
            )
            db.executemany(
                "INSERT INTO probes (id, brand, channel, question, text, planned_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    (p.id, p.brand, p.channel, p.question, p.text, iso(p.planned_at))
                    for p in plan
                ),
            )
        return True

    # -- probes ----------------------------------------------------------------------------

    _PROBE_COLS = (
        "id, brand, channel, question, text, planned_at, state, message_id, sent_at, outcome"
    )

    @staticmethod
    def _probe(row: tuple[Any, ...]) -> ProbeRow:
        return ProbeRow(
            id=row[0], brand=row[1], channel=row[2], question=row[3], text=row[4],
            planned_at=parse_iso(row[5]), state=row[6], message_id=row[7],
            sent_at=_opt_time(row[8]), outcome=row[9],
        )

    def probes(self, state: str | None = None, channel: str | None = None) -> list[ProbeRow]:
        sql = f"SELECT {self._PROBE_COLS} FROM probes WHERE 1=1"
        args: list[str] = []
        if state is not None:
            sql += " AND state = ?"
            args.append(state)
        if channel is not None:
            sql += " AND channel = ?"
            args.append(channel)
        return [self._probe(r) for r in self.db.execute(sql + " ORDER BY planned_at, id", args)]

    def probes_by_id(self, ids: Iterable[str]) -> list[ProbeRow]:
        ids = list(ids)
        marks = ",".join("?" * len(ids))
        rows = self.db.execute(f"SELECT {self._PROBE_COLS} FROM probes WHERE id IN ({marks})", ids)
        return [self._probe(r) for r in rows]

    def count(self, states: Iterable[str], channels: Iterable[str] | None = None) -> int:
        """How many probes are in any of ``states`` (on ``channels``)."""
        return int(self.db.execute(*self._state_query("count(*)", states, channels))
                   .fetchone()[0])

    def any_in(self, states: Iterable[str], channels: Iterable[str] | None = None) -> bool:
        """Whether any probe is in ``states``: stops at the first, so it is cheap every pass."""
        sql, args = self._state_query("1", states, channels)
        return self.db.execute(sql + " LIMIT 1", args).fetchone() is not None

    @staticmethod
    def _state_query(what: str, states: Iterable[str],
                     channels: Iterable[str] | None) -> tuple[str, list[str]]:
        states = list(states)
        sql = f"SELECT {what} FROM probes WHERE state IN ({','.join('?' * len(states))})"
        args = list(states)
        if channels is not None:
            channels = list(channels)
            sql += f" AND channel IN ({','.join('?' * len(channels))})"
            args += channels
        return sql, args

    def expired(self, channel: str, sent_before: datetime) -> list[ProbeRow]:
        """Sent, unsettled probes on ``channel`` sent at or before ``sent_before``."""
        rows = self.db.execute(
            f"SELECT {self._PROBE_COLS} FROM probes WHERE state = 'sent' AND channel = ? "
            "AND sent_at <= ? ORDER BY sent_at, id",
            (channel, iso(sent_before)),
        )
        return [self._probe(r) for r in rows]

    def due_probes(self, now: datetime) -> list[ProbeRow]:
        rows = self.db.execute(
            f"SELECT {self._PROBE_COLS} FROM probes WHERE state = 'planned' AND planned_at <= ? "
            "ORDER BY planned_at, id",
            (iso(now),),
        )
        return [self._probe(r) for r in rows]

    def next_planned_at(self, channels: Iterable[str] | None = None,
                        after: datetime | None = None) -> datetime | None:
        """When the next planned probe (on ``channels``; due after ``after``) is due."""
        sql, args = self._state_query("min(planned_at)", ["planned"], channels)
        if after is not None:
            sql += " AND planned_at > ?"
            args.append(iso(after))
        return _opt_time(self.db.execute(sql, args).fetchone()[0])

    def begin_send(self, probe_id: str, now: datetime) -> None:
        """Record the intent to send *before* sending (rule 3: never send twice).

        This one commit is made durable (``synchronous = FULL``: the WAL is synced), so even a
        power cut right after the post leaves the probe ``sending``, to be reconciled, never
        ``planned``, to be posted again. Other commits may be lost to a power cut harmlessly:
        a lost ``sent`` is reconciled, a lost poll is read again.
        """
        if self.durable_intent:
            self.db.execute("PRAGMA synchronous = FULL")
        try:
            with self.transaction() as db:
                db.execute(
                    "UPDATE probes SET state = 'sending' WHERE id = ? AND state = 'planned'",
                    (probe_id,),
                )
                db.execute(
                    "INSERT INTO send_attempts (probe_id, started_at) VALUES (?, ?)",
                    (probe_id, iso(now)),
                )
        finally:
            self.db.execute("PRAGMA synchronous = NORMAL")

    def _finish_attempt(self, db: sqlite3.Connection, probe_id: str, outcome: str,
                        detail: str, now: datetime) -> None:
        db.execute(
            "UPDATE send_attempts SET finished_at = ?, outcome = ?, detail = ? "
            "WHERE id = (SELECT max(id) FROM send_attempts WHERE probe_id = ?)",
            (iso(now), outcome, detail, probe_id),
        )

    def mark_sent(self, probe_id: str, message_id: str, sent_at: datetime, posted_text: str,
                  now: datetime, how: str = "sent") -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE probes SET state = 'sent', message_id = ?, sent_at = ?, posted_text = ? "
                "WHERE id = ?",
                (message_id, iso(sent_at), posted_text, probe_id),
            )
            self._finish_attempt(db, probe_id, how, message_id, now)

    def abort_send(self, probe_id: str, detail: str, now: datetime,
                   outcome: str = "not sent") -> None:
        """The platform certainly did not post it: back to planned, to be tried again.

        ``outcome`` says why, for :meth:`failed_attempts`: ``not sent`` (the platform said no,
        e.g. 429), ``failed`` (an uncertain send the platform turned out not to have),
        ``interrupted`` (we crashed before it reached the platform)."""
        with self.transaction() as db:
            db.execute("UPDATE probes SET state = 'planned' WHERE id = ?", (probe_id,))
            self._finish_attempt(db, probe_id, outcome, detail, now)

    def mark_uncertain(self, probe_id: str, detail: str, now: datetime) -> None:
        """The platform failed in a way that leaves the post unknown (a timeout, a 5xx, a lost
        answer): the probe stays ``sending``, to be reconciled, and the attempt says why."""
        with self.transaction() as db:
            self._finish_attempt(db, probe_id, "uncertain", detail, now)

    def failed_attempts(self, probe_id: str) -> int:
        """Attempts that reached the platform and failed there (not crashes, not waits)."""
        return int(self.db.execute(
            "SELECT count(*) FROM send_attempts WHERE probe_id = ? AND outcome = 'failed'",
            (probe_id,),
        ).fetchone()[0])

    def exclude(self, probe_id: str, kind: str, reason: str, now: datetime) -> None:
        """Settle a probe as ``excluded`` and record why, together."""
        with self.transaction() as db:
            self._exclude(db, probe_id, kind, reason, now)

    @staticmethod
    def _exclude(db: sqlite3.Connection, probe_id: str, kind: str, reason: str,
                 now: datetime) -> None:
        db.execute(
            "UPDATE probes SET state = 'settled', outcome = 'excluded', settled_at = ? "
            "WHERE id = ?",
            (iso(now), probe_id),
        )
        db.execute(
            "INSERT OR REPLACE INTO flags VALUES (?, ?, ?, ?)", (probe_id, kind, reason, iso(now))
        )

    def flags(self) -> list[Flag]:
        """Every excluded probe's reason, in probe order."""
        rows = self.db.execute(
            "SELECT probe_id, kind, reason, flagged_at FROM flags ORDER BY probe_id, kind"
        )
        return [Flag(r[0], r[1], r[2], parse_iso(r[3])) for r in rows]

    def open_probes(self, channel: str, sent_before: datetime) -> list[ProbeRow]:
        """Sent, unsettled probes on ``channel`` sent before ``sent_before``."""
        rows = self.db.execute(
            f"SELECT {self._PROBE_COLS} FROM probes WHERE state = 'sent' AND channel = ? "
            "AND sent_at < ? ORDER BY sent_at, id",
            (channel, iso(sent_before)),
        )
        return [self._probe(r) for r in rows]

    def settle(self, probe_id: str, outcome: str, now: datetime) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE probes SET state = 'settled', outcome = ?, settled_at = ? WHERE id = ?",
                (outcome, iso(now), probe_id),
            )

    def attempts(self, probe_id: str) -> list[tuple[str, str | None, str | None]]:
        return list(
            self.db.execute(
                "SELECT started_at, outcome, detail FROM send_attempts WHERE probe_id = ? "
                "ORDER BY id",
                (probe_id,),
            )
        )

    # -- replies and cursors ---------------------------------------------------------------

    def probe_for_thread(self, channel: str, message_ids: Iterable[str | None]) -> str | None:
        """The probe a thread belongs to: a probe's own message id, or a reply already
        recorded in its thread (a brand answering its own holding message)."""
        for mid in message_ids:
            if not mid:
                continue
            row = self.db.execute(
                "SELECT id FROM probes WHERE channel = ? AND message_id = ?", (channel, mid)
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
        row = self.db.execute(
            "SELECT id FROM probes WHERE state = 'sent' AND channel = ? AND brand = ? "
            "AND sent_at < ? ORDER BY sent_at DESC, id DESC LIMIT 1",
            (channel, brand, iso(before)),
        ).fetchone()
        return str(row[0]) if row else None

    def cursor(self, channel: str) -> tuple[str | None, datetime | None]:
        row = self.db.execute(
            "SELECT value, polled_through FROM cursors WHERE channel = ?", (channel,)
        ).fetchone()
        if row is None:
            return None, None
        return row[0], _opt_time(row[1])

    def record_poll(self, channel: str, replies: Iterable[ReplyRow], cursor: str | None,
                    polled_through: datetime, now: datetime,
                    excluded: Iterable[tuple[str, str]] = ()) -> int:
        """Commit replies and the cursor that covers them together (rule 4). Idempotent on the
        platform's message id. Returns how many replies were new.

        ``excluded`` (probe id, reason) are probes this poll found it cannot vouch for (their
        replies may lie beyond the platform's reach): they are flagged in the same commit, as
        the advanced cursor will never show the gap again. ``polled_through`` never goes back.
        """
        new = 0
        with self.transaction() as db:
            for probe_id, reason in excluded:
                self._exclude(db, probe_id, "reach", reason, now)
            for r in replies:
                cur = db.execute(
                    "INSERT OR IGNORE INTO replies VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (r.channel, r.message_id, r.probe_id, r.author, r.text, iso(r.created_at),
                     r.in_reply_to, r.conversation_id, r.auto_code, iso(now)),
                )
                new += cur.rowcount
            db.execute(
                "INSERT INTO cursors VALUES (?, ?, ?, ?) ON CONFLICT (channel) DO UPDATE SET "
                "value = excluded.value, "
                "polled_through = max(coalesce(polled_through, ''), excluded.polled_through), "
                "updated_at = excluded.updated_at",
                (channel, cursor, iso(polled_through), iso(now)),
            )
        return new

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
        """The main coder's manual codes (``mystery.coders``), overriding the automatic code;
        other coders' codes are kept for agreement and never change the timings."""
        rows = self.db.execute(
            "SELECT channel, message_id, code FROM codes "
            "WHERE coder = (SELECT value FROM meta WHERE key = ?)", (MAIN_CODER,)
        )
        return {(r[0], r[1]): r[2] for r in rows}

    def set_code(self, channel: str, message_id: str, code: str, coder: str,
                 now: datetime) -> None:
        self.set_codes([(channel, message_id, code)], coder, now)

    # -- summaries -------------------------------------------------------------------------

    def counts(self) -> Counts:
        planned, sent, settled, unanswered = self.db.execute(
            "SELECT count(*), count(message_id), sum(state = 'settled'), "
            "sum(outcome = 'unanswered') FROM probes"
        ).fetchone()
        acknowledged, resolved = self.db.execute(
            "SELECT count(DISTINCT probe_id), count(DISTINCT CASE WHEN auto_code = 'resolution' "
            "THEN probe_id END) FROM replies"
        ).fetchone()
        return Counts(planned, sent, acknowledged, resolved, unanswered or 0, settled or 0)

    def cutoff(self) -> timedelta:
        return timedelta(seconds=float(self._required_meta("cutoff_seconds")))

    def _required_meta(self, key: str) -> str:
        value = self.meta(key)
        if value is None:
            raise StoreError(f"{self.path} holds no study yet; run 'mystery run' first")
        return value

    def timing_rows(self) -> list[dict[str, Any]]:
        """One row per probe in the timings schema (``mystery.analysis.timings``): the seam
        between collecting and analysing. Probes not yet settled are left out: their outcome
        is not known yet."""
        brands: dict[str, dict[str, str]] = json.loads(self._required_meta("brands"))
        cutoff = self.cutoff()
        codes = self.codes()
        replies: dict[str, list[ReplyRow]] = {}
        for reply in self.replies():
            replies.setdefault(reply.probe_id, []).append(reply)
        common = {
            "study": self._required_meta("study"),
            "series": self._required_meta("series"),
            "year": int(self._required_meta("year")),
        }
        rows = []
        for probe in self.probes(state="settled"):
            if probe.outcome == "excluded" or probe.sent_at is None:
                # Never sent, or sent but its replies cannot be vouched for (see ``flags``):
                # no times, so no figure can pick up half-known ones.
                times, status = ProbeTimes(None, None), "excluded"
            else:
                times = probe_times(probe.sent_at, replies.get(probe.id, []), codes, cutoff)
                status = "answered" if times.ack is not None else "unanswered"
            rows.append({
                **common,
                "brand": probe.brand,
                "sector": brands.get(probe.brand, {}).get("sector", ""),
                "country": brands.get(probe.brand, {}).get("country", ""),
                "channel": probe.channel,
                "question": probe.question,
                "sent_at": probe.sent_at,
                "ack_seconds": times.ack,
                "resolution_seconds": times.resolution,
                "status": status,
                "cutoff_seconds": cutoff.total_seconds(),
            })
        return rows

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

    def set_codes(self, codes: Iterable[tuple[str, str, str]], coder: str,
                  now: datetime) -> int:
        """Many (channel, message_id, code) by one coder in one transaction: an imported codes
        file lands wholly or not at all. Returns how many were written. The first coder to
        code in a store becomes its main coder."""
        written = 0
        with self.transaction() as db:
            for channel, message_id, code in codes:
                db.execute(
                    "INSERT OR REPLACE INTO codes VALUES (?, ?, ?, ?, ?)",
                    (channel, message_id, code, coder, iso(now)),
                )
                written += 1
            if written:
                db.execute("INSERT OR IGNORE INTO meta VALUES (?, ?)", (MAIN_CODER, coder))
        return written

    # -- hand-logged channels (mystery.handlog) --------------------------------------------

    def record_hand_log(self, entries: Iterable[HandEntry], now: datetime) -> int:
        """Apply what a researcher logged by hand, all in one transaction (a CSV import lands
        wholly or not at all). Idempotent: the same entry twice changes nothing. Returns how
        many entries were new. The caller (``mystery.handlog``) has validated them."""
        new = 0
        with self.transaction() as db:
            for e in entries:
                cur = db.execute(
                    "INSERT OR IGNORE INTO hand_log (probe_id, event, at, code, source, "
                    "logged_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (e.probe_id, e.event, iso(e.at), e.code, e.source, iso(now)),
                )
                new += cur.rowcount
                if e.event == "sent":
                    self._hand_sent(db, e, now)
                elif e.event == "reply":
                    db.execute(
                        "INSERT OR IGNORE INTO replies (channel, message_id, probe_id, author, "
                        "text, created_at, in_reply_to, conversation_id, auto_code, "
                        "recorded_at) SELECT channel, ?, id, ?, ?, ?, message_id, NULL, ?, ? "
                        "FROM probes WHERE id = ?",
                        (e.message_id, e.author, e.text, iso(e.at), e.code, iso(now),
                         e.probe_id),
                    )
                else:  # gave_up: settled now, at the time the researcher stopped waiting
                    db.execute(
                        "UPDATE probes SET state = 'settled', outcome = ?, settled_at = ? "
                        "WHERE id = ? AND state = 'sent'",
                        (e.outcome, iso(e.at), e.probe_id),
                    )
        return new

    def _hand_sent(self, db: sqlite3.Connection, e: HandEntry, now: datetime) -> None:
        row = db.execute("SELECT state FROM probes WHERE id = ?", (e.probe_id,)).fetchone()
        if row is None or row[0] not in ("planned", "sending"):
            return  # already sent (the same time: validated), nothing to change
        db.execute(
            "INSERT INTO send_attempts (probe_id, started_at, finished_at, outcome, detail) "
            "VALUES (?, ?, ?, 'hand-logged', ?)",
            (e.probe_id, iso(now), iso(now), e.source),
        )
        db.execute(
            "UPDATE probes SET state = 'sent', message_id = ?, sent_at = ?, posted_text = text, "
            "timing_source = 'hand' WHERE id = ?",
            (e.message_id, iso(e.at), e.probe_id),
        )

    def timing_sources(self) -> dict[str, str]:
        """Probe id → ``platform`` or ``hand``: which clock timed it (see ``_m003_handlog``)."""
        return {str(r[0]): str(r[1])
                for r in self.db.execute("SELECT id, timing_source FROM probes")}

    def gave_up(self) -> dict[str, datetime]:
        """Probe id → when the researcher stopped waiting for a reply (``mystery log``): such
        a probe is censored there, not at the cutoff, when it has no reply by then."""
        rows = self.db.execute(
            "SELECT probe_id, min(at) FROM hand_log WHERE event = 'gave_up' GROUP BY probe_id"
        )
        return {str(r[0]): parse_iso(r[1]) for r in rows}


@dataclass(frozen=True)
class HandEntry:
    """One thing a researcher logged by hand (``mystery.handlog`` builds these)."""

    probe_id: str
    event: str  # sent | reply | gave_up
    at: datetime  # UTC, whole minutes
    source: str  # "prompt" or "<file> row <n>"
    message_id: str = ""  # sent: the probe's stand-in id; reply: the reply's
    code: str = ""  # reply: acknowledgement | resolution
    author: str = ""  # reply: the brand's contact point
    text: str = ""  # reply: the researcher's note
    outcome: str = ""  # gave_up: answered | unanswered
