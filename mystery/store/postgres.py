"""The store's PostgreSQL connection (psycopg 3), speaking the store's SQL as SQLite does.

Why one store with two connections rather than two stores: the rules that keep a study's
numbers true (intent committed before a post, a cursor committed with its replies, idempotent
replies) live in :mod:`mystery.store.store` once; a second copy of them for PostgreSQL would
drift. The store writes portable SQL with ``?`` placeholders; this connection turns them into
psycopg's ``%s`` (and a literal ``%`` into ``%%``), and runs in autocommit with the store's
own ``BEGIN`` … ``COMMIT``, exactly like the SQLite connection with ``isolation_level=None``.

Failures are told in the researcher's words, as :func:`mystery.store.connection.store_problem`
does for SQLite, and the URL's password never appears in them (:func:`address.scrub`).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from mystery.errors import StoreError
from mystery.store.address import PostgresAddress, scrub
from mystery.store.connection import POSTGRESQL, Dialect

if TYPE_CHECKING:
    import psycopg

CONNECT_TIMEOUT = 10
"""Seconds to wait for the server: an unreachable host is told about, not waited on."""


def _sql(statement: str) -> str:
    """The store's SQL (``?`` placeholders, never a ``?`` or ``%`` of its own inside a
    literal but for the dialect's own fragments) in psycopg's placeholder style."""
    return statement.replace("%", "%%").replace("?", "%s")


class PgRows:
    """A statement's rows (psycopg's cursor), with failures mapped like the statements'."""

    def __init__(self, cursor: psycopg.Cursor[Any], db: PgConnection) -> None:
        self._cursor = cursor
        self._db = db

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    def fetchone(self) -> Any:
        with self._db.mapped():
            return self._cursor.fetchone()

    def fetchall(self) -> list[Any]:
        with self._db.mapped():
            return self._cursor.fetchall()

    def __iter__(self) -> Iterator[Any]:
        return iter(self.fetchall())


class PgConnection:
    """One connection to a PostgreSQL store (see the module docstring)."""

    dialect: Dialect = POSTGRESQL

    def __init__(self, conn: psycopg.Connection[Any], address: PostgresAddress) -> None:
        self.conn = conn
        self.address = address
        self.round_trips = 0  # statements sent: the benchmark reports them per probe

    def execute(self, sql: str, parameters: Any = (), /) -> PgRows:
        with self.mapped():
            self.round_trips += 1
            return PgRows(self.conn.execute(_sql(sql), tuple(parameters)), self)

    def executemany(self, sql: str, parameters: Any, /) -> PgRows:
        with self.mapped():
            self.round_trips += 1
            cursor = self.conn.cursor()
            cursor.executemany(_sql(sql), [tuple(p) for p in parameters])
            return PgRows(cursor, self)

    @property
    def in_transaction(self) -> bool:
        from psycopg.pq import TransactionStatus

        # ACTIVE too: a statement cut short by an interrupt may leave the transaction with a
        # command still under way, and it must be rolled back all the same.
        return self.conn.info.transaction_status in (TransactionStatus.INTRANS,
                                                     TransactionStatus.INERROR,
                                                     TransactionStatus.ACTIVE)

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def mapped(self) -> Iterator[None]:
        import psycopg

        try:
            yield
        except (psycopg.IntegrityError, psycopg.ProgrammingError, psycopg.InterfaceError):
            if self.conn.closed:
                raise lost(self.address, "the connection is closed") from None
            raise  # a bug in mystery, not the user's to fix
        except psycopg.Error as exc:
            raise problem(exc, self.address) from None


def problem(exc: Exception, address: PostgresAddress) -> StoreError:
    """The message for a PostgreSQL failure on the store at ``address``."""
    text = scrub(str(exc).strip().replace("\n", " "), address)
    sqlstate = getattr(exc, "sqlstate", None)
    if sqlstate == "53100":
        return StoreError(f"the PostgreSQL server of {address} has no disk space left "
                          f"({text}): free some and run the same command again; what was not "
                          "committed is done again, exactly")
    if sqlstate is not None and sqlstate.startswith("42"):
        return StoreError(f"{address}: PostgreSQL refused a statement ({text}); the role in "
                          "the URL must own the database's tables (grant it, or use the role "
                          "that created the store)")
    return lost(address, text)


def lost(address: PostgresAddress, text: str) -> StoreError:
    return StoreError(f"lost the PostgreSQL store {address} ({text}): check the server and "
                      "run the same command again; what was not committed is done again, "
                      "exactly")


def connect(address: PostgresAddress, role: str = "store") -> PgConnection:
    """Open ``address``; every way of failing to is one message with the fix."""
    import psycopg

    name = f"mystery {role} pid {os.getpid()} on {socket.gethostname()}"[:63]
    try:
        conn = psycopg.connect(address.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT,
                               application_name=name)
    except psycopg.Error as exc:
        raise _cannot_connect(exc, address) from None
    return PgConnection(conn, address)


def _cannot_connect(exc: Exception, address: PostgresAddress) -> StoreError:
    text = scrub(str(exc).strip().replace("\n", " "), address)
    if "does not exist" in text and "database" in text:
        fix = ("create the study's database first (createdb, or CREATE DATABASE as its "
               "owner), one database per study")
    elif "password" in text or "authentication" in text or "role" in text:
        fix = ("check the user and password (the password can also come from PGPASSWORD or "
               "~/.pgpass, which keeps it out of shell history)")
    elif "invalid" in text or "missing" in text:
        fix = "write the URL as postgresql://user@host:port/dbname"
    else:
        fix = ("check that the server runs and accepts connections from this machine (host, "
               "port, firewall, pg_hba.conf)")
    return StoreError(f"cannot open the PostgreSQL store {address} ({text}): {fix}")
