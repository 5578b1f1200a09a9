"""Several runners on one PostgreSQL study: each holds a lease on the accounts it serves.

A team runs one study from several machines, one runner per researcher account
(``mystery run STUDY --db postgresql://… --account shopper_a``), or from one runner for all of
its accounts (``mystery run STUDY --db postgresql://…``), or a mix. Each probe belongs to one
account, and only the runner holding that account's lease sends its probes, reads its mentions
and moves its cursor: so there is one poller per account, and no probe is ever in two runners'
hands. A runner takes the leases of all the accounts it serves in one transaction, or none.

How a lease is held and lost:

- it is a row of ``leases`` per (channel, account), claimed with ``SELECT … FOR UPDATE SKIP
  LOCKED``: two runners starting at once never wait on each other; the second is told who has
  it;
- a heartbeat (a thread with its own connection) renews it every :data:`HEARTBEAT` seconds,
  in the server's clock (the runners' machines need not agree on the time);
- a lease is free when its holder released it, when its heartbeat is older than
  :data:`LEASE` seconds, or at once when the holder's database session is gone (the server
  closes the session of a runner that died, SIGKILL or a crashed laptop, as soon as its
  connection drops: ``pg_stat_activity`` no longer lists it);
- the runner that takes an account over starts like any restarted runner: every probe left
  ``sending`` is looked for on that account's own timeline before anything is sent again
  (DESIGN.md rule 3), so an uncertain send is reconciled, never repeated;
- every send is fenced: the intent to send is recorded only while this runner still holds the
  probe's lease (:meth:`~mystery.store.store.Store.begin_send`), so a runner that was silent
  past its lease (a suspended laptop) and wakes up sends nothing; and so is every poll's
  commit (:meth:`~mystery.store.store.Store.record_poll`): it records no reply and moves no
  cursor of an account whose lease it lost, even between its last look at the lease and the
  commit.

Why the lease outlasts a send: :data:`LEASE` is longer than the longest a send may take (the
runner's request timeout), so a runner whose lease lapsed mid-post has finished posting before
another may look for that post.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType

from mystery.errors import StoreError, StoreLockedError
from mystery.store.address import PostgresAddress
from mystery.store.postgres import PgConnection, connect

LEASE = 60.0
"""Seconds a lease lasts without a heartbeat (longer than a send's timeout, 30 s)."""
HEARTBEAT = 10.0
"""Seconds between heartbeats."""

NOW = "to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
"""The server's time as the store writes times (ISO 8601 UTC, milliseconds)."""
LATER = ("to_char((now() + make_interval(secs => ?)) AT TIME ZONE 'UTC', "
         "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')")


@dataclass(frozen=True)
class RunnerRow:
    """A runner as the leases table shows it: the live view lists the others."""

    channel: str
    account: str
    who: str
    host: str
    since: str
    heartbeat_age: float  # seconds since its last heartbeat


def _dead_here(host: str, pid: int) -> bool:
    """Whether the holder ran on this machine and its process is gone: its session may
    linger a moment on the server after a SIGKILL, but its lease is free at once."""
    from mystery.store.lock import Holder

    return host == socket.gethostname() and not Holder(pid, host, "").alive()


def holder_name() -> str:
    """Who this runner is: process, host and a random part (a pid is reused)."""
    return f"pid {os.getpid()} on {socket.gethostname()} #{secrets.token_hex(4)}"


class Leases:
    """``with Leases(address, {"x": "shopper_a"}) as leases:`` serves those accounts; a runner
    serving several accounts of a channel passes (channel, account) pairs instead,
    ``[("x", "shopper_a"), ("x", "shopper_b")]``, and gets every lease or none.

    ``taken_over`` lists the runners whose lapsed leases this one took, to be told about."""

    def __init__(self, address: PostgresAddress,
                 accounts: Mapping[str, str] | Iterable[tuple[str, str]],
                 lease: float = LEASE, heartbeat: float = HEARTBEAT) -> None:
        self.address = address
        self.accounts = sorted(set(accounts.items() if isinstance(accounts, Mapping)
                                   else accounts))
        self.lease = lease
        self.heartbeat = heartbeat
        self.holder = holder_name()
        self.taken_over: list[str] = []
        self.lost = threading.Event()
        self.lost_why = ""  # set with ``lost``: what the runner tells before it stops
        self._db: PgConnection | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- claiming --------------------------------------------------------------------------

    def acquire(self) -> Leases:
        db = connect(self.address, role="runner")
        try:
            self._claim(db)
        except BaseException:
            db.close()
            raise
        self._db = db
        self._thread = threading.Thread(target=self._beat, name="mystery-heartbeat",
                                        daemon=True)
        self._thread.start()
        return self

    def _where(self) -> tuple[str, list[str]]:
        terms = " OR ".join("(channel = ? AND account = ?)" for _ in self.accounts)
        return f"({terms})", [v for pair in self.accounts for v in pair]

    def _claim(self, db: PgConnection) -> None:
        where, args = self._where()
        db.execute("BEGIN")
        try:
            db.executemany(
                "INSERT INTO leases (channel, account, holder, host, pid, backend, since, "
                "heartbeat_at, expires_at) VALUES (?, ?, '', '', 0, 0, '', '', '') "
                "ON CONFLICT DO NOTHING", self.accounts)
            rows = db.execute(
                f"SELECT channel, account, holder, host, pid, since, "
                f"expires_at < {NOW}, backend IN (SELECT pid FROM pg_stat_activity), "
                f"extract(epoch FROM now() - CASE WHEN heartbeat_at = '' THEN now() ELSE "
                f"heartbeat_at::timestamptz END) FROM leases WHERE {where} "
                "ORDER BY channel, account FOR UPDATE SKIP LOCKED", args).fetchall()
            if len(rows) < len(self.accounts):
                raise StoreLockedError(
                    f"another runner is claiming the same account of this study on "
                    f"{self.address} at this very moment; run again in a few seconds")
            for channel, account, holder, host, pid, since, lapsed, alive, age in rows:
                if holder and not lapsed and alive and not _dead_here(host, pid):
                    raise StoreLockedError(
                        f"account {account} on {channel} is served by another runner ({holder}, "
                        f"since {since}, last heartbeat {float(age):.0f} s ago) on "
                        f"{self.address}: one runner per account. Start this one for another "
                        "account (--account), or stop that one first (it resumes safely)")
                if holder:
                    why = "its lease lapsed" if lapsed else "its process is gone"
                    self.taken_over.append(f"{account} on {channel} from {holder} ({why})")
            db.executemany(
                f"UPDATE leases SET holder = ?, host = ?, pid = ?, backend = pg_backend_pid(), "
                f"since = {NOW}, heartbeat_at = {NOW}, expires_at = {LATER} "
                "WHERE channel = ? AND account = ?",
                [(self.holder, socket.gethostname(), os.getpid(), self.lease, channel, account)
                 for channel, account in self.accounts])
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    # -- holding ---------------------------------------------------------------------------

    def _beat(self) -> None:
        """Renew every lease until released; a lease found taken is lost (the fence then
        refuses every send)."""
        where, args = self._where()
        while not self._stop.wait(self.heartbeat):
            db = self._db
            if db is None:
                return
            try:
                renewed = db.execute(
                    f"UPDATE leases SET heartbeat_at = {NOW}, expires_at = {LATER} "
                    f"WHERE holder = ? AND {where}", [self.lease, self.holder, *args]).rowcount
            except Exception as exc:  # the connection died: the runner stops, and says so
                self._lose(f"its heartbeat could not reach {self.address} "
                           f"({type(exc).__name__})")
                return
            if renewed < len(self.accounts):
                self._lose("another runner took the account over (this one was silent longer "
                           f"than the {self.lease:.0f} s lease)")
                return

    def _lose(self, why: str) -> None:
        served = ", ".join(f"{account} on {channel}" for channel, account in self.accounts)
        self.lost_why = (f"this runner lost its lease on {served}: {why}. It stops here and "
                         "sends and reads nothing more; run it again to resume safely (it "
                         "waits for, or takes back, the account)")
        self.lost.set()

    def check(self) -> str | None:
        """Why this runner may no longer serve its accounts, or None while it may."""
        return self.lost_why if self.lost.is_set() else None

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        db, self._db = self._db, None
        if db is None:
            return
        try:
            # Never wait long for the rows: a runner stopped in the middle of a send may still
            # hold them in its store's unfinished transaction (in this very process), and a
            # release that waited for that would wait forever. Not released here, a lease is
            # free all the same once this session closes (a claim sees its backend gone).
            db.execute("SET lock_timeout = '2s'")
            db.execute("UPDATE leases SET holder = '', expires_at = '' WHERE holder = ?",
                       (self.holder,))
        except StoreError:
            pass
        finally:
            db.close()

    def __enter__(self) -> Leases:
        return self.acquire()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


FENCE = (f"SELECT 1 FROM leases l JOIN probes p ON p.channel = l.channel "
         f"AND p.account = l.account WHERE p.id = ? AND l.holder = ? AND l.expires_at > {NOW} "
         "FOR SHARE OF l")
"""Whether this runner still holds the lease of a probe's account (inside the send's
transaction: a runner taking the account over waits for it, or it for them)."""

POLL_FENCE = ("SELECT 1 FROM leases WHERE channel = ? AND account = ? AND holder = ? "
              f"AND expires_at > {NOW} FOR SHARE")
"""Whether this runner still holds the lease of the account it polled, inside the poll's
transaction: a runner that lost the lease after its last look records nothing, so the cursor
of an account another runner now serves moves only by that runner's polls."""


def runners(db: PgConnection) -> list[RunnerRow]:
    """Every runner holding a lease now, for the live view."""
    rows = db.execute(
        "SELECT channel, account, holder, host, since, extract(epoch FROM now() - "
        f"heartbeat_at::timestamptz) FROM leases WHERE holder != '' AND expires_at > {NOW} "
        "ORDER BY channel, account").fetchall()
    return [RunnerRow(r[0], r[1], r[2], r[3], r[4], float(r[5])) for r in rows]
