"""Where a study's store lives: an SQLite file (the default) or a PostgreSQL database.

``--db study.db`` and ``--db postgresql://user@host/dbname`` are one option: a team shares one
PostgreSQL database, a researcher alone keeps the file beside the study. The URL is kept whole
to connect with (it may hold a password), but only its redacted form is ever printed: ``str()``
of a :class:`PostgresAddress` hides the password, so a message, a log line or a notice that
names the store can never leak it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from mystery.errors import StoreError

SCHEMES = ("postgresql://", "postgres://")


@dataclass(frozen=True)
class PostgresAddress:
    """A PostgreSQL store's URL; ``str()`` is the URL with its password replaced by ``***``."""

    url: str = field(repr=False)

    def __str__(self) -> str:
        return redact(self.url)

    def __repr__(self) -> str:
        return f"PostgresAddress({str(self)!r})"

    @property
    def password(self) -> str | None:
        return urlsplit(self.url).password


StoreAddress = Path | PostgresAddress
"""What ``Store.open`` opens."""


def is_postgres(db: str | Path | PostgresAddress) -> bool:
    return isinstance(db, PostgresAddress) or (
        isinstance(db, str) and db.lower().startswith(SCHEMES))


def store_address(db: str | Path | PostgresAddress | None, default: Path) -> StoreAddress:
    """The store ``--db`` names (``default``, the file beside the study, when none)."""
    if db is None:
        return default
    if isinstance(db, PostgresAddress | Path):
        return db
    if is_postgres(db):
        parts = urlsplit(db)
        if not parts.hostname and "host=" not in parts.query:
            raise StoreError(
                f"--db {redact(db)}: no host in the PostgreSQL URL; write it as "
                "postgresql://user@host/dbname (or postgresql://user@host:port/dbname)")
        if not parts.path.strip("/"):
            raise StoreError(
                f"--db {redact(db)}: no database name in the PostgreSQL URL; write it as "
                "postgresql://user@host/dbname, one database per study")
        return PostgresAddress(db)
    if "://" in db:
        raise StoreError(f"--db {redact(db)}: not a store mystery knows; give an SQLite file "
                         "(study.db) or a postgresql://user@host/dbname URL")
    return Path(db)


def redact(url: str) -> str:
    """``url`` with any password replaced by ``***`` (in the netloc and in ``password=``)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<an unreadable URL>"
    netloc = parts.netloc
    if parts.password is not None:
        userinfo, _, hostinfo = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:***@{hostinfo}"
    query = "&".join(
        "password=***" if item.lower().startswith("password=") else item
        for item in parts.query.split("&")
    ) if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def scrub(text: str, address: StoreAddress) -> str:
    """``text`` (a driver's message) with the address's password, if any, hidden."""
    if isinstance(address, PostgresAddress) and address.password:
        return text.replace(address.password, "***")
    return text
