"""Copying a study's store into another, SQLite to PostgreSQL or back, row for row.

Why rows and not a dump: the two databases share the schema (the same migrations build both)
and nothing else, so a study moves as the rows of its tables, each table's columns in the
order the migrations made them. The copy is one transaction on the target: it lands whole or
not at all, and :func:`mystery.timings.move.copy_study` checks the timings before that
transaction commits.
"""

from __future__ import annotations

from mystery.errors import StoreError
from mystery.store.connection import Db
from mystery.store.store import Store

FIRST = ("meta", "probes")
"""Tables other tables point at (foreign keys): copied first."""

BATCH = 1000


def tables(db: Db) -> list[str]:
    """The store's tables in copying order; ``migrations`` and ``leases`` (who runs it
    now) stay each store's own."""
    if db.dialect.name == "postgresql":
        sql = "SELECT tablename FROM pg_catalog.pg_tables WHERE schemaname = current_schema()"
    else:
        sql = "SELECT name FROM sqlite_master WHERE type = 'table'"
    names = {str(r[0]) for r in db.execute(sql)} - {"migrations", "leases"}
    return [t for t in FIRST if t in names] + sorted(names - set(FIRST))


def copy_rows(source: Store, target: Db) -> dict[str, int]:
    """Every row of ``source`` into ``target`` (inside the caller's transaction); the number of
    rows per table. Refuses stores whose tables differ (one made by another mystery)."""
    names = tables(source.db)
    if names != tables(target):
        raise StoreError(
            f"{source.path} and the target have different tables ({', '.join(names)} against "
            f"{', '.join(tables(target))}): open both with the same mystery version")
    copied: dict[str, int] = {}
    for table in names:
        rows = source.db.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
        copied[table] = len(rows)
        if not rows:
            continue
        marks = ", ".join("?" * len(rows[0]))
        for start in range(0, len(rows), BATCH):
            target.executemany(f"INSERT INTO {table} VALUES ({marks})",
                               [tuple(r) for r in rows[start:start + BATCH]])
    if target.dialect.name == "postgresql":
        # Rows came with their ids: move each identity past them, as SQLite's rowid moves.
        for table in ("send_attempts", "hand_log"):
            if table in names:
                target.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"coalesce(max(id), 0) + 1, false) FROM {table}")
    return copied
