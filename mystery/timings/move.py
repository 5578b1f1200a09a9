"""Moving a study to another store (``mystery store copy``), checked by its timings.

A team moves a study started on one laptop (SQLite) into the shared PostgreSQL database, or a
finished study back into a file to archive it. Why this lives beside the timings and not in
the store: the proof that nothing was lost or changed on the way is that the timings, what
every table and chart is made of, come out of the copy exactly as out of the original, to the
millisecond; the store alone does not know what a timing is. Every row of every table is also
compared, so the replies, codes and send attempts of probes not yet settled travel too.

The copy is one transaction on the target, checked before it commits; a target this command
created is removed again when anything fails. Both stores are held (the runner's lock) for the
copy, so no runner writes to either meanwhile.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from mystery.errors import StoreError
from mystery.store.address import StoreAddress, store_address
from mystery.store.copy import copy_rows, tables
from mystery.store.lock import study_lock
from mystery.store.store import Store
from mystery.study.load import LoadedStudy
from mystery.timings.export import timing_rows


@dataclass(frozen=True)
class Moved:
    """What a copy carried: rows per table and the timings it checked."""

    source: StoreAddress
    target: StoreAddress
    rows: dict[str, int]
    timings: int


def copy_study(loaded: LoadedStudy, source: str | Path | None, target: str | Path) -> Moved:
    """Copy the study's store at ``source`` (default: beside the study) into ``target``, an
    empty database or a new file; raise :class:`StoreError` with the fix for every refusal."""
    src = store_address(source, loaded.default_db)
    dst = store_address(target, loaded.default_db)
    if str(src) == str(dst):
        raise StoreError(f"--from and --to are the same store ({src}); name another --to")
    with ExitStack() as held:
        held.enter_context(study_lock(src))
        held.enter_context(study_lock(dst))
        original = held.enter_context(Store.open(src, create=False))
        busy = at_work(original)
        if busy:
            raise StoreError(f"runners are at work on {src} ({'; '.join(busy)}): stop them "
                             "first (they resume safely), then copy")
        owner = original.meta("study")
        if owner != loaded.study.name:
            raise StoreError(
                f"{src} holds no study yet; nothing to copy" if owner is None else
                f"{src} belongs to study {owner!r}, not {loaded.study.name!r}; pass this "
                "study's store with --from")
        copy = Store.open(dst)
        try:
            held.callback(copy.close)
            there = copy.meta("study")
            if there is not None:
                raise StoreError(
                    f"{dst} already holds study {there!r}; copy into an empty database "
                    "(createdb) or a new file, never over a store")
            with copy.transaction() as db:
                rows = copy_rows(original, db)
                timings = _same(original, copy)
        except BaseException:
            if copy.created:
                copy.discard()
            raise
    return Moved(src, dst, rows, timings)


def at_work(store: Store) -> list[str]:
    """The runners holding a lease on a PostgreSQL store now (none on SQLite: its file lock
    is held for the copy instead)."""
    from mystery.store.postgres import PgConnection

    if not isinstance(store.db, PgConnection):
        return []
    from mystery.store.leases import runners

    return [f"{r.who}, account {r.account} on {r.channel}" for r in runners(store.db)]


def _same(original: Store, copy: Store) -> int:
    """Check, inside the copy's transaction, that the copy holds what the original does: every
    row, and so every timing; the number of timings."""
    for table in tables(original.db):
        a = original.db.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
        b = copy.db.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
        if sorted(map(tuple, a), key=repr) != sorted(map(tuple, b), key=repr):
            raise StoreError(f"the copy of table {table} differs from {original.path}; "
                             "nothing was copied (please report this)")
    before, after = timing_rows(original), timing_rows(copy)
    if before != after:
        raise StoreError(f"the copy's timings differ from those of {original.path}; nothing "
                         "was copied (please report this)")
    return len(before)
