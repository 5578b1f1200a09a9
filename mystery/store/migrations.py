"""The schema of a store, as the ordered, named migrations that build it.

Each migration is applied once, in order, inside the transaction that records its name in the
``migrations`` table (``Store.open`` applies those a store has not had yet), so a user's data
survives upgrades of mystery (the simonw/llm pattern). So a change to the schema is a new
migration at the end of :data:`MIGRATIONS`, never an edit of one a store may have had already.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable


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
"""The meta key naming the coder whose codes drive the timings (``mystery.coding.coders``)."""


def _m005_main_coder(db: sqlite3.Connection) -> None:
    """A store coded before the main-coder rule gets the coder of its earliest code as main
    coder, the default the rule gives a new store (``Store.set_codes``)."""
    db.execute("INSERT OR IGNORE INTO meta SELECT ?, coder FROM codes "
               "ORDER BY coded_at, coder LIMIT 1", (MAIN_CODER,))


def _m006_edits(db: sqlite3.Connection) -> None:
    """The other ids of an edited probe (X gives each edit a new id, and replies answer the
    latest): a reply to any version belongs to the probe, timed from its first version."""
    _run_script(
        db,
        """
        CREATE TABLE edits (
            channel TEXT NOT NULL,
            message_id TEXT NOT NULL,
            probe_id TEXT NOT NULL REFERENCES probes (id),
            PRIMARY KEY (channel, message_id)
        );
        """
    )


def _m007_accounts(db: sqlite3.Connection) -> None:
    """Several researcher accounts per channel: the account each probe is sent from (its
    plan's), and a polling cursor per account, since each account reads its own mentions.

    A store made before has one account per channel; its rows get ``''`` here, which
    ``Store.initialise`` replaces with that account's name the next time the study opens it
    (the migration cannot know the name; the study file does). SQLite cannot change a primary
    key in place, so ``cursors`` is rebuilt."""
    _run_script(
        db,
        """
        ALTER TABLE probes ADD COLUMN account TEXT NOT NULL DEFAULT '';
        CREATE INDEX probes_account_planned ON probes (state, channel, account, planned_at);
        CREATE TABLE cursors_by_account (
            channel TEXT NOT NULL,
            account TEXT NOT NULL DEFAULT '',
            value TEXT,
            polled_through TEXT,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (channel, account)
        );
        INSERT INTO cursors_by_account (channel, value, polled_through, updated_at)
            SELECT channel, value, polled_through, updated_at FROM cursors;
        DROP TABLE cursors;
        ALTER TABLE cursors_by_account RENAME TO cursors
        """
    )


MIGRATIONS: list[tuple[str, Callable[[sqlite3.Connection], None]]] = [
    ("m001_initial", _m001_initial),
    ("m002_flags", _m002_flags),
    ("m003_handlog", _m003_handlog),
    ("m004_awaiting", _m004_awaiting),
    ("m005_main_coder", _m005_main_coder),
    ("m006_edits", _m006_edits),
    ("m007_accounts", _m007_accounts),
]
