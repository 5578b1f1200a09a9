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
in order on open (the simonw/llm pattern; :mod:`mystery.store.migrations`), so a store survives
upgrades of mystery.

This module holds the writes; the queries that only read are in :mod:`mystery.store.reads`
(``Store`` inherits them) and the records both hand out in :mod:`mystery.store.rows`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from mystery.clock import iso
from mystery.errors import StoreError
from mystery.store.address import PostgresAddress, StoreAddress, store_address
from mystery.store.connection import Db, connect
from mystery.store.migrations import MAIN_CODER, MIGRATIONS
from mystery.store.reads import StoreReads
from mystery.store.rows import Counts, Flag, HandEntry, ProbeRow, ReplyRow
from mystery.study.model import Study
from mystery.study.plan import PlannedProbe
from mystery.text import well_formed
from mystery.words import Code, Outcome

__all__ = [  # the records and the schema are imported from here by callers of the store
    "MAIN_CODER",
    "MIGRATIONS",
    "Counts",
    "Flag",
    "HandEntry",
    "ProbeRow",
    "ReplyRow",
    "Store",
    "open_or_discard",
]


SETUP_KEY = 0x6D797374
"""A PostgreSQL advisory lock key: held while a store is migrated or planned, so runners that
start together on a new study do it once."""


PRESENT_KEY = 0x6D797375
"""Held shared by every command that has a PostgreSQL store open; exclusively to discard it."""

BRAND_KEY = 0x6D797376
"""With a brand's hash, the transaction-scoped advisory lock that serialises intents to send
to one brand across runners (see :meth:`Store.begin_send`). Advisory locks are per database,
and a database holds one study, so (this key, the brand) is (study, brand)."""

COUNTS_KEY = 0x6D797377
"""With a meta key's hash, the advisory lock under which runners add to counts kept there
(:meth:`Store.add_counts`: a paid channel's spend)."""

Held = TypeVar("Held")


def _held() -> str | None:
    """No lease to lose (SQLite, or a PostgreSQL store used by one command)."""
    return None


class _Refused(Exception):
    """A brand check that said no inside :meth:`Store.begin_send`: roll back, report it."""


class Store(StoreReads):
    """One study's store. Use :meth:`open`; every mutating method commits before returning."""

    def __init__(self, db: Db, path: StoreAddress) -> None:
        super().__init__(db, path)
        # Sync each intent to send to disk (see begin_send). Off for the sandbox, whose world
        # a power cut ends too: there is no post on any platform to be sent twice.
        self.durable_intent = True
        self.created = False  # whether opening made it (open_or_discard removes it again)
        # The lease this runner holds on a PostgreSQL study (mystery.store.leases): every
        # intent to send is recorded only while it still holds the probe's account.
        self.lease_holder: str | None = None
        # Why that lease is lost, once it is (None while held): the runner stops at once.
        self.lease_lost: Callable[[], str | None] = _held
        self.closed = False

    # -- lifecycle -------------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | Path | PostgresAddress, *, create: bool = True) -> Store:
        """The store at ``path``: an SQLite file, or a ``postgresql://`` URL
        (:mod:`mystery.store.postgres`); ``create=False`` refuses one that holds nothing."""
        address = store_address(path, Path())
        if isinstance(address, PostgresAddress):
            return cls._open_postgres(address, create=create)
        path = address
        if not create and not path.exists():
            raise StoreError(
                f"no store at {path}; run 'mystery run' on the study first, or pass --db"
            )
        existed = path.exists()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                # Owner-only from the first byte: the store holds reply texts and account details.
                fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
                os.close(fd)
            with open(path, "rb") as file:
                header = file.read(16)
        except IsADirectoryError:
            raise StoreError(f"{path} is a folder, not a mystery store; pass the store's file "
                             "(the .db beside the study file) with --db") from None
        except OSError as exc:
            raise StoreError(
                f"cannot open {path}: {exc.strerror}; check that you may read and write it and "
                "its folder (or pass another --db)"
            ) from None
        if header and header != b"SQLite format 3\x00":
            raise StoreError(f"{path} is not a mystery store (not an SQLite database); pass "
                             "another --db")
        db = connect(path)
        try:
            # Look before touching: switching to WAL rewrites the file header, which must not
            # happen to another program's database.
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if tables and "migrations" not in tables:
                raise StoreError(
                    f"{path} is not a mystery store (an SQLite database of another program); "
                    "pass another --db"
                )
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = NORMAL")
            db.execute("PRAGMA foreign_keys = ON")
            db.execute("PRAGMA busy_timeout = 5000")
        except BaseException:
            db.close()
            raise
        store = cls(db, path)
        store.created = not existed
        store._migrate()
        return store

    @classmethod
    def _open_postgres(cls, address: PostgresAddress, *, create: bool) -> Store:
        from mystery.store.postgres import connect as pg_connect

        db = pg_connect(address)
        try:
            # Present for as long as this connection lives: a store is discarded only when no
            # other command has it open (see discard).
            db.execute("SELECT pg_advisory_lock_shared(?)", (PRESENT_KEY,))
            tables = _postgres_tables(db)
            if tables and "migrations" not in tables:
                raise StoreError(
                    f"{address} is not a mystery store (its database holds tables of another "
                    "program); give each study its own database (createdb) and pass its URL")
            if not tables and not create:
                raise StoreError(f"no store at {address} (its database is empty); run "
                                 "'mystery run' on the study with this --db first")
        except BaseException:
            db.close()
            raise
        store = cls(db, address)
        store.created = not tables
        store._migrate()
        return store

    def discard(self) -> None:
        """Remove what opening a new store made (see :func:`open_or_discard`), and close."""
        if isinstance(self.path, PostgresAddress):
            alone = self.db.execute("SELECT pg_try_advisory_lock(?)", (PRESENT_KEY,)).fetchone()
            if not alone[0]:  # another runner of the team has it open: it is theirs too
                self.close()
                return
            with self.transaction() as db:
                for table in sorted(_postgres_tables(db)):
                    db.execute(f'DROP TABLE IF EXISTS "{table}" CASCADE')
            self.close()
            return
        self.close()
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)

    def close(self) -> None:
        self.closed = True
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[Db]:
        """``BEGIN IMMEDIATE`` … ``COMMIT``: all or nothing, and no other writer in between
        (PostgreSQL: ``BEGIN``, its row locks keeping writers apart)."""
        try:
            # BEGIN inside the try: an interrupt that lands just after it must roll back too,
            # or the transaction would stay open, holding whatever it locks next.
            self.db.execute(self.db.dialect.begin)
            yield self.db
            self.db.execute("COMMIT")
        except BaseException:
            # SQLite may have rolled back already (a full disk, an I/O error): then there is
            # nothing to undo, and the first error is the one to tell. A closed store has
            # nothing to undo either: an interrupt that lands between this generator's yield
            # and the caller's ``with`` leaves it suspended, to be closed by the garbage
            # collector after the store was (closing a connection discards its transaction),
            # and asking a closed connection printed a traceback after "Interrupted".
            if not self.closed and self.db.in_transaction:
                with suppress(StoreError):
                    self.db.execute("ROLLBACK")
            raise

    def _migrate(self) -> None:
        with self.transaction() as db:
            if db.dialect.name == "postgresql":  # runners starting together migrate once
                db.execute("SELECT pg_advisory_xact_lock(?)", (SETUP_KEY,))
            db.execute(
                "CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at TEXT)"
            )
            done = {row[0] for row in db.execute("SELECT name FROM migrations")}
            for name, migration in MIGRATIONS:
                if name not in done:
                    migration(db)
                    db.execute(
                        "INSERT INTO migrations VALUES (?, ?)",
                        (name, datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")),
                    )

    # -- study and plan --------------------------------------------------------------------

    def add_counts(
        self, key: str, added: Mapping[str, int],
        within: Callable[[dict[str, int]], bool] | None = None,
    ) -> tuple[dict[str, int], bool]:
        """Add ``added`` to the JSON counts held in meta ``key``, in one transaction, unless
        ``within`` says the new counts are not allowed (then nothing is written); return the
        counts now held and whether ``added`` was added. Why add rather than write: several
        runners of one study each spend from the study's budget, and a runner that wrote its
        own ledger would overwrite what the others had saved; why check in the same
        transaction: two runners must not both take the last of a budget (PostgreSQL: an
        advisory lock on the key keeps two runners from adding at once; SQLite takes its one
        writer's lock)."""
        import json

        with self.transaction() as db:
            if db.dialect.name == "postgresql":
                db.execute("SELECT pg_advisory_xact_lock(?, hashtext(?))", (COUNTS_KEY, key))
            row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
            held: dict[str, int] = json.loads(row[0]) if row is not None else {}
            counts = dict(held)
            for name, value in added.items():
                counts[name] = counts.get(name, 0) + value
            if within is not None and not within(counts):
                return held, False
            db.execute("INSERT INTO meta VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET "
                       "value = excluded.value", (key, json.dumps(counts, sort_keys=True)))
        return counts, True

    def set_meta(self, items: dict[str, str]) -> None:
        with self.transaction() as db:
            db.executemany("INSERT INTO meta VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET "
                           "value = excluded.value", items.items())

    def initialise(self, study: Study, plan: Iterable[PlannedProbe]) -> bool:
        """Pin the store to a study and insert its plan; a no-op when already done.

        Returns True when the store was new. Refuses a store made for another study, or for a
        different version of this one: mixing plans would corrupt both. The digest is of the
        validated model, so editing comments or reordering keys in the file is harmless.
        Runners of a team starting together on a new PostgreSQL store plan it once.
        """
        if self.db.dialect.name != "postgresql":
            return self._initialise(study, plan)
        self.db.execute("SELECT pg_advisory_lock(?)", (SETUP_KEY,))
        try:
            return self._initialise(study, plan)
        finally:
            self.db.execute("SELECT pg_advisory_unlock(?)", (SETUP_KEY,))

    def _initialise(self, study: Study, plan: Iterable[PlannedProbe]) -> bool:
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
            self._name_accounts(plan)
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
                "INSERT INTO probes (id, brand, channel, question, text, planned_at, account) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    (p.id, p.brand, p.channel, p.question, p.text, iso(p.planned_at),
                     p.account)
                    for p in plan
                ),
            )
        return True

    def _name_accounts(self, plan: Iterable[PlannedProbe]) -> None:
        """A store made before accounts were recorded (``m007_accounts`` left them ``''``):
        name each probe's account from the plan, which the digest says is the plan it holds,
        and give the channel's cursor to that account. Done once; a no-op after."""
        if self.db.execute("SELECT 1 FROM probes WHERE account = '' LIMIT 1").fetchone() is None:
            return
        plan = list(plan)
        with self.transaction() as db:
            db.executemany("UPDATE probes SET account = ? WHERE id = ? AND account = ''",
                           [(p.account, p.id) for p in plan])
            db.executemany("UPDATE cursors SET account = ? WHERE channel = ? AND account = ''",
                           sorted({(p.account, p.channel) for p in plan}))

    # -- probes ----------------------------------------------------------------------------

    def begin_send(self, probe_id: str, now: datetime,
                   brand: tuple[str, Callable[[], Held | None]] | None = None) -> Held | None:
        """Record the intent to send *before* sending (rule 3: never send twice).

        This one commit is made durable (``synchronous = FULL``: the WAL is synced), so even a
        power cut right after the post leaves the probe ``sending``, to be reconciled, never
        ``planned``, to be posted again. Other commits may be lost to a power cut harmlessly:
        a lost ``sent`` is reconciled, a lost poll is read again.

        ``brand`` is (the probe's brand, the check of the brand safeguards). On PostgreSQL,
        where several runners (other accounts) may ask the same brand at the same moment, the
        check runs again inside this transaction under an advisory lock on the brand, held
        until the intent is committed: of two runners that both passed the check, the second
        sees the first's ``sending`` probe. A check that says no leaves the store as it was and
        is returned (the probe is held, not sent). SQLite needs no lock: one runner holds the
        file, and the caller's check just before still holds.
        """
        # PostgreSQL syncs every commit (synchronous_commit is on by default).
        sqlite = self.db.dialect.name == "sqlite"
        if self.durable_intent and sqlite:
            self.db.execute("PRAGMA synchronous = FULL")
        try:
            with self.transaction() as db:
                self.check_brand(db, brand)
                if self.lease_holder is not None:
                    self._claim(db, probe_id)
                db.execute(
                    "UPDATE probes SET state = 'sending' WHERE id = ? AND state = 'planned'",
                    (probe_id,),
                )
                db.execute(
                    "INSERT INTO send_attempts (probe_id, started_at) VALUES (?, ?)",
                    (probe_id, iso(now)),
                )
        except _Refused as refused:
            return refused.args[0]  # type: ignore[no-any-return]
        finally:
            if sqlite:
                self.db.execute("PRAGMA synchronous = NORMAL")
        return None

    def check_brand(self, db: Db, brand: tuple[str, Callable[[], Held | None]] | None) -> None:
        """Inside a transaction that makes a brand's probe open (its intent to send, or its
        showing to a researcher in ``manual`` mode): on PostgreSQL, lock the brand until the
        commit and run its check again; a check that says no raises :class:`_Refused` with its
        answer, so that the caller rolls back and reports it (see :meth:`begin_send`)."""
        if brand is None or db.dialect.name == "sqlite":
            return
        db.execute("SELECT pg_advisory_xact_lock(?, hashtext(?))", (BRAND_KEY, brand[0]))
        held = brand[1]()
        if held is not None:
            raise _Refused(held)

    def checked(self, brand: tuple[str, Callable[[], Held | None]] | None,
                change: Callable[[Db], None]) -> Held | None:
        """``change`` in one transaction after :meth:`check_brand`: None once committed, or
        the check's answer, with nothing changed."""
        try:
            with self.transaction() as db:
                self.check_brand(db, brand)
                change(db)
        except _Refused as refused:
            return refused.args[0]  # type: ignore[no-any-return]
        return None

    def other_runners(self) -> list[str]:
        """The other runners at work on this study now (PostgreSQL: who, where, since when,
        lease age), for the live view; none on SQLite, where one runner holds the file."""
        from mystery.store.postgres import PgConnection

        if not isinstance(self.db, PgConnection):
            return []
        from mystery.store.leases import runners

        return [f"{r.account} on {r.channel}: {r.who.split(' #')[0]}, since {r.since[:19]} UTC, "
                f"heartbeat {r.heartbeat_age:.0f} s ago"
                for r in runners(self.db) if r.who != self.lease_holder]

    def _claim(self, db: Db, probe_id: str) -> None:
        """Several runners (PostgreSQL): send only while holding the probe's account's lease,
        and only a probe no other transaction has claimed (``FOR UPDATE SKIP LOCKED``)."""
        from mystery.errors import StoreLockedError
        from mystery.store.leases import FENCE

        if db.execute(FENCE, (probe_id, self.lease_holder)).fetchone() is None:
            raise StoreLockedError(
                f"this runner lost its lease on {probe_id}'s account (it was silent longer "
                "than the lease, and another runner may have taken the account over): it "
                "sends nothing more. Run it again to resume safely")
        if db.execute("SELECT id FROM probes WHERE id = ? AND state = 'planned' "
                      "FOR UPDATE SKIP LOCKED", (probe_id,)).fetchone() is None:
            raise StoreLockedError(f"{probe_id} is in another runner's hands; run again to "
                                   "resume safely")

    def _finish_attempt(self, db: Db, probe_id: str, outcome: str,
                        detail: str, now: datetime) -> None:
        db.execute(
            "UPDATE send_attempts SET finished_at = ?, outcome = ?, detail = ? "
            "WHERE id = (SELECT max(id) FROM send_attempts WHERE probe_id = ?)",
            (iso(now), outcome, well_formed(detail), probe_id),  # may quote the platform
        )

    def mark_sent(self, probe_id: str, message_id: str, sent_at: datetime, posted_text: str,
                  now: datetime, how: str = "sent") -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE probes SET state = 'sent', message_id = ?, sent_at = ?, posted_text = ? "
                "WHERE id = ?",
                (message_id, iso(sent_at), well_formed(posted_text), probe_id),
            )
            self._finish_attempt(db, probe_id, how, message_id, now)

    def abort_send(self, probe_id: str, detail: str, now: datetime,
                   outcome: str = "not sent") -> None:
        """The platform certainly did not post it: back to planned, to be tried again.

        ``outcome`` says why (the runner counts the ``failed`` ones among ``attempts``):
        ``not sent`` (the platform said no, e.g. 429), ``failed`` (an uncertain send the
        platform turned out not to have), ``interrupted`` (we crashed before it reached the
        platform)."""
        with self.transaction() as db:
            db.execute("UPDATE probes SET state = 'planned' WHERE id = ?", (probe_id,))
            self._finish_attempt(db, probe_id, outcome, detail, now)

    def mark_uncertain(self, probe_id: str, detail: str, now: datetime) -> None:
        """The platform failed in a way that leaves the post unknown (a timeout, a 5xx, a lost
        answer): the probe stays ``sending``, to be reconciled, and the attempt says why."""
        with self.transaction() as db:
            self._finish_attempt(db, probe_id, "uncertain", detail, now)

    def exclude(self, probe_id: str, kind: str, reason: str, now: datetime) -> None:
        """Settle a probe as ``excluded`` and record why, together."""
        with self.transaction() as db:
            self.exclude_in(db, probe_id, kind, reason, now)

    @staticmethod
    def exclude_in(db: Db, probe_id: str, kind: str, reason: str,
                   now: datetime) -> None:
        """:meth:`exclude` inside the caller's transaction (a poll's, a missed probe's)."""
        db.execute(
            "UPDATE probes SET state = 'settled', outcome = 'excluded', settled_at = ? "
            "WHERE id = ?",
            (iso(now), probe_id),
        )
        db.execute(
            "INSERT INTO flags VALUES (?, ?, ?, ?) ON CONFLICT (probe_id, kind) DO UPDATE SET "
            "reason = excluded.reason, flagged_at = excluded.flagged_at",
            (probe_id, kind, reason, iso(now)),
        )

    def settle(self, probe_id: str, outcome: Outcome, now: datetime) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE probes SET state = 'settled', outcome = ?, settled_at = ? WHERE id = ?",
                (outcome, iso(now), probe_id),
            )

    # -- replies and cursors ---------------------------------------------------------------

    def record_poll(self, channel: str, replies: Iterable[ReplyRow], cursor: str | None,
                    polled_through: datetime, now: datetime,
                    excluded: Iterable[tuple[str, str]] = (), *, account: str = "") -> int:
        """Commit replies and the cursor that covers them together (rule 4). Idempotent on the
        platform's message id. Returns how many replies were new.

        ``excluded`` (probe id, reason) are probes this poll found it cannot vouch for (their
        replies may lie beyond the platform's reach): they are flagged in the same commit, as
        the advanced cursor will never show the gap again. ``polled_through`` never goes back.
        The cursor is ``account``'s: each account of a channel reads its own mentions. On a
        PostgreSQL study with several runners the commit is fenced by ``account``'s lease
        (:data:`~mystery.store.leases.POLL_FENCE`): a runner that lost it records nothing.
        """
        new = 0
        with self.transaction() as db:
            if self.lease_holder is not None:
                self._still_polling(db, channel, account)
            for probe_id, reason in excluded:
                self.exclude_in(db, probe_id, "reach", reason, now)
            for r in replies:
                cur = db.execute(
                    "INSERT INTO replies VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT DO NOTHING",
                    (r.channel, r.message_id, r.probe_id, well_formed(r.author),
                     well_formed(r.text), iso(r.created_at),
                     r.in_reply_to, r.conversation_id, r.auto_code, iso(now)),
                )
                new += cur.rowcount
            db.execute(
                "INSERT INTO cursors (channel, account, value, polled_through, updated_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (channel, account) DO UPDATE SET "
                "value = excluded.value, "
                f"polled_through = {db.dialect.greatest}(coalesce(cursors.polled_through, ''), "
                "excluded.polled_through), "
                "updated_at = excluded.updated_at",
                (channel, account, cursor, iso(polled_through), iso(now)),
            )
        return new

    def _still_polling(self, db: Db, channel: str, account: str) -> None:
        from mystery.errors import StoreLockedError
        from mystery.store.leases import POLL_FENCE

        if db.execute(POLL_FENCE, (channel, account, self.lease_holder)).fetchone() is None:
            raise StoreLockedError(
                f"this runner lost its lease on {account} on {channel} before its poll was "
                "recorded (it was silent longer than the lease, and another runner may have "
                "taken the account over): it records and sends nothing more. Run it again to "
                "resume safely")

    def record_edits(self, channel: str, message_ids: Iterable[str], probe_id: str) -> None:
        """Every id of an edited probe's versions (its edit history): replies to any of them
        are the probe's. Idempotent."""
        with self.transaction() as db:
            db.executemany("INSERT INTO edits VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                           [(channel, mid, probe_id) for mid in message_ids])

    def set_code(self, channel: str, message_id: str, code: Code, coder: str,
                 now: datetime) -> None:
        self.set_codes([(channel, message_id, code)], coder, now)

    # -- codes by coder (mystery code) -----------------------------------------------------

    def set_codes(self, codes: Iterable[tuple[str, str, str]], coder: str,
                  now: datetime) -> int:
        """Many (channel, message_id, code) by one coder in one transaction: an imported codes
        file lands wholly or not at all. Returns how many were written. The first coder to
        code in a store becomes its main coder."""
        written = 0
        with self.transaction() as db:
            for channel, message_id, code in codes:
                db.execute(
                    "INSERT INTO codes VALUES (?, ?, ?, ?, ?) ON CONFLICT (channel, message_id, "
                    "coder) DO UPDATE SET code = excluded.code, coded_at = excluded.coded_at",
                    (channel, message_id, code, coder, iso(now)),
                )
                written += 1
            if written:
                db.execute("INSERT INTO meta VALUES (?, ?) ON CONFLICT DO NOTHING",
                           (MAIN_CODER, coder))
        return written

    # -- hand-logged channels (mystery.collect.handlog) --------------------------------------------

    def record_hand_log(self, entries: Iterable[HandEntry], now: datetime) -> int:
        """Apply what a researcher logged by hand, all in one transaction (a CSV import lands
        wholly or not at all). Idempotent: the same entry twice changes nothing. Returns how
        many entries were new. The caller (``mystery.collect.handlog``) has validated them."""
        new = 0
        with self.transaction() as db:
            for e in entries:
                cur = db.execute(
                    "INSERT INTO hand_log (probe_id, event, at, code, source, "
                    "logged_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    (e.probe_id, e.event, iso(e.at), e.code, e.source, iso(now)),
                )
                new += cur.rowcount
                if e.event == "sent":
                    self._hand_sent(db, e, now)
                elif e.event == "reply":
                    db.execute(
                        "INSERT INTO replies (channel, message_id, probe_id, author, "
                        "text, created_at, in_reply_to, conversation_id, auto_code, "
                        "recorded_at) SELECT channel, ?, id, ?, ?, ?, message_id, NULL, ?, ? "
                        "FROM probes WHERE id = ? ON CONFLICT DO NOTHING",
                        (e.message_id, well_formed(e.author), well_formed(e.text), iso(e.at),
                         e.code, iso(now), e.probe_id),
                    )
                else:  # gave_up: settled now, at the time the researcher stopped waiting
                    db.execute(
                        "UPDATE probes SET state = 'settled', outcome = ?, settled_at = ? "
                        "WHERE id = ? AND state = 'sent'",
                        (e.outcome, iso(e.at), e.probe_id),
                    )
        return new

    def _hand_sent(self, db: Db, e: HandEntry, now: datetime) -> None:
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


def _postgres_tables(db: Db) -> set[str]:
    """Every table in the database's schema, whoever owns it (``information_schema`` would
    hide those our role may not read, and so let a study in beside another program's)."""
    return {r[0] for r in db.execute(
        "SELECT tablename FROM pg_catalog.pg_tables WHERE schemaname = current_schema()")}


@contextmanager
def open_or_discard(path: str | Path | PostgresAddress) -> Iterator[Store]:
    """``with open_or_discard(db) as store:`` — :meth:`Store.open`, except that a store this
    command created is deleted again when the command fails before it recorded anything (an
    unreachable sandbox, a CSV whose every row is refused): a failed command leaves no new
    file behind. A store that held anything before, or records anything now, is kept."""
    store = Store.open(path)
    try:
        yield store
    except BaseException:
        unused = False
        if store.created:
            with suppress(StoreError):
                unused = store.untouched()
        if unused:
            with suppress(StoreError):
                store.discard()
        store.close()
        raise
    store.close()
