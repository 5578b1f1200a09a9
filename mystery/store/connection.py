"""The store's SQLite connection, which says what went wrong in the researcher's words.

Why a connection class rather than ``try`` around each query: SQLite can fail on any statement
of any command (a damaged page is found by whichever query reads it first, a full disk by
whichever write needs a page), and a raw ``sqlite3.OperationalError`` reaches the user as a
traceback that names neither the store nor the fix. Every ``execute`` and every row fetched
through this connection turns such a failure into one :class:`~mystery.errors.StoreError`
naming the file, the cause and what to do. A failed write leaves the store as it was: each
change is one transaction, rolled back whole (see ``Store.transaction``).

Programming errors (``IntegrityError``, ``ProgrammingError``, ``InterfaceError``) are left as
they are: they are bugs in mystery, not the user's to fix.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mystery.errors import StoreError

_BUGS = (sqlite3.IntegrityError, sqlite3.ProgrammingError, sqlite3.InterfaceError)


def store_problem(exc: sqlite3.Error, path: Path) -> StoreError:
    """The message for an SQLite failure on the store at ``path``."""
    text = str(exc)
    if "malformed" in text or "not a database" in text:
        why = (f"{path} is damaged ({text}). mystery changed nothing; restore the store from a "
               f"backup, or rescue what SQLite can read with: sqlite3 {path} .recover | "
               "sqlite3 rescued.db, then pass --db rescued.db")
    elif "locked" in text or "busy" in text:
        why = (f"{path} is held by another program ({text}, after waiting 5 s): close the "
               "other SQLite client (a database browser, a sqlite3 shell), then run again")
    elif "readonly" in text or "read-only" in text:
        why = (f"{path} cannot be written ({text}): make the file and its folder writable, "
               "or copy the store somewhere writable and pass --db; a study that is not "
               "finished must record what it sends and reads")
    elif "disk is full" in text or "disk full" in text or (
            "disk I/O" in text and _nearly_full(path)):
        why = (f"the disk that holds {path} is full ({text}): free some space and run the "
               "same command again; what was not committed is done again, exactly")
    elif "unable to open" in text and not os.access(path.parent, os.W_OK):
        why = (f"{path} cannot be written: its folder {path.resolve().parent} is read-only "
               "(SQLite keeps its journal beside the store); make the folder writable, or copy "
               "the store somewhere writable and pass --db")
    elif "unable to open" in text or "disk I/O" in text:
        why = (f"cannot use {path} ({text}): check that its folder exists and that you may "
               "read and write it")
    else:
        why = f"{path}: SQLite failed ({text})"
    return StoreError(why)


def _nearly_full(path: Path) -> bool:
    """Whether the disk holding ``path`` has under a megabyte left: SQLite reports a full disk
    as an I/O error when it is its WAL index (``-shm``) that cannot grow."""
    try:
        return shutil.disk_usage(path.resolve().parent).free < 1 << 20
    except OSError:
        return False


class StoreCursor(sqlite3.Cursor):
    """A cursor whose statements and fetches raise :func:`store_problem`'s errors."""

    connection: StoreConnection

    def execute(self, sql: str, parameters: Any = (), /) -> StoreCursor:
        with self.connection.mapped():
            super().execute(sql, parameters)
        return self

    def executemany(self, sql: str, seq_of_parameters: Any, /) -> StoreCursor:
        with self.connection.mapped():
            super().executemany(sql, seq_of_parameters)
        return self

    def fetchone(self) -> Any:
        with self.connection.mapped():
            return super().fetchone()

    def fetchmany(self, size: int | None = 1) -> list[Any]:
        with self.connection.mapped():
            return super().fetchmany(size if size is not None else self.arraysize)

    def fetchall(self) -> list[Any]:
        with self.connection.mapped():
            return super().fetchall()

    def __next__(self) -> Any:
        with self.connection.mapped():
            return super().__next__()


class StoreConnection(sqlite3.Connection):
    """``sqlite3.connect(path, factory=StoreConnection)``: every cursor is a
    :class:`StoreCursor`, so ``db.execute(...)`` maps failures too."""

    path: Path

    def cursor(self, factory: Any = StoreCursor) -> Any:
        return super().cursor(factory)

    def execute(self, sql: str, parameters: Any = (), /) -> StoreCursor:
        cursor: StoreCursor = self.cursor()
        return cursor.execute(sql, parameters)

    def executemany(self, sql: str, parameters: Any, /) -> StoreCursor:
        cursor: StoreCursor = self.cursor()
        return cursor.executemany(sql, parameters)

    @contextmanager
    def mapped(self) -> Iterator[None]:
        try:
            yield
        except _BUGS:
            raise
        except sqlite3.Error as exc:
            raise store_problem(exc, self.path) from None


def connect(path: Path) -> StoreConnection:
    """Open ``path`` with autocommit off (explicit transactions only) from any thread."""
    try:
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                             factory=StoreConnection)
    except sqlite3.Error as exc:
        raise store_problem(exc, path) from None
    db.path = path
    return db
