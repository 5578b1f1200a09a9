"""One runner per study on a PostgreSQL store: a session-level advisory lock.

Why an advisory lock rather than a row: like the file lock of an SQLite store
(:mod:`mystery.store.lock`), the server drops it the moment its holder's session ends, however
the runner died (SIGKILL, a cut cable: the server notices the closed connection), so it can
never go stale. It is held on a connection of its own, so the store's transactions never
release it. Who holds it is read from ``pg_stat_activity``, where every mystery connection
names its process and host (``application_name``).
"""

from __future__ import annotations

from types import TracebackType

from mystery.errors import StoreLockedError
from mystery.store.address import PostgresAddress
from mystery.store.lock import Holder
from mystery.store.postgres import PgConnection, connect

KEY = 0x6D797374  # "myst": one study per database, so one key per database
"""The advisory lock's key; the lock is per database, and a database holds one study."""


class AdvisoryLock:
    """``with AdvisoryLock(address):`` holds the study on ``address`` for this process."""

    def __init__(self, address: PostgresAddress) -> None:
        self.address = address
        self.taken_over: Holder | None = None  # the server frees a dead holder's lock itself
        self._db: PgConnection | None = None

    def acquire(self) -> AdvisoryLock:
        db = connect(self.address, role="run")
        try:
            if not db.execute("SELECT pg_try_advisory_lock(?)", (KEY,)).fetchone()[0]:
                raise self._refusal(db)
        except BaseException:
            db.close()
            raise
        self._db = db
        return self

    def _refusal(self, db: PgConnection) -> StoreLockedError:
        row = db.execute(
            "SELECT a.application_name, a.client_addr::text, a.backend_start::text "
            "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.objid = ? AND l.granted "
            "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            (KEY,),
        ).fetchone()
        who = (f"{row[0]} (from {row[1] or 'this host'}, since {row[2]})" if row
               else "a runner that is just starting")
        return StoreLockedError(
            f"another 'mystery run' is using this study's store {self.address} ({who}). Only "
            "one runner may collect a study at a time: wait for it to finish, or stop it (it "
            "resumes safely) and run again"
        )

    def release(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            db.close()  # ends the session, and with it the lock

    def __enter__(self) -> AdvisoryLock:
        return self.acquire()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()
