"""A poll's commit is fenced by its account's lease in the database, as an intent to send is:
a runner whose lease was taken between its last look and the commit records no reply and
moves no cursor, so an account another runner now serves is polled by that runner only."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest

from mystery.errors import StoreLockedError
from mystery.store.address import PostgresAddress
from mystery.store.leases import Leases
from mystery.store.store import ReplyRow, Store
from mystery.study.model import Study
from mystery.study.plan import make_plan
from tests.postgres import PostgresServer

STUDY = Study.model_validate({
    "name": "fence-t", "year": 2026, "cutoff": "1d",
    "channels": {"x": {"accounts": ["shopper_a", "shopper_b"], "poll_every": "7m"}},
    "questions": [{"id": "q", "text": "Hi {brand}, are you open on Sundays?"}],
    "schedule": {"start": "2026-03-02", "end": "2026-03-02", "probes_per_brand": 1,
                 "min_gap": "1h", "seed": 4},
    "brands": [{"name": n, "handles": {"x": n.lower()}} for n in ("Acme", "Globex")],
})
NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)


def _reply(probe_id: str) -> ReplyRow:
    return ReplyRow(channel="x", message_id="1900000000000000001", probe_id=probe_id,
                    author="acme", text="@shopper_a Yes, 10 to 4.", created_at=NOW,
                    in_reply_to="1800000000000000001", conversation_id="1800000000000000001",
                    auto_code="resolved")


def test_a_poll_is_recorded_only_while_its_accounts_lease_is_held_on_postgres(
        postgres_server: PostgresServer) -> None:
    url = postgres_server.database()
    with Store.open(url) as store:
        store.initialise(STUDY, make_plan(STUDY))
        probe = next(p for p in store.probes() if p.account == "shopper_a")
        with store.transaction() as db:  # sent, so that a reply may be its
            db.execute("UPDATE probes SET state = 'sent', message_id = ?, sent_at = ? "
                       "WHERE id = ?", ("1800000000000000001", "2026-03-02T11:00:00.000Z",
                                        probe.id))
    # A heartbeat far off: nothing but the other runner changes the lease during the test.
    with Leases(PostgresAddress(url), {"x": "shopper_a"}, heartbeat=3600) as leases, \
            Store.open(url) as store:
        store.lease_holder, store.lease_lost = leases.holder, leases.check
        # Held: the poll is recorded.
        assert store.record_poll("x", [], "c1", NOW, NOW, account="shopper_a") == 0
        assert store.cursor("x", "shopper_a")[0] == "c1"

        # Another runner takes shopper_a over after this runner's last look at its lease
        # (lease_lost still says all is well: the heartbeat has not noticed yet).
        with psycopg.connect(url, autocommit=True) as other:
            other.execute("UPDATE leases SET holder = 'pid 1 on elsewhere #0' "
                          "WHERE account = 'shopper_a'")
        assert store.lease_lost() is None
        with pytest.raises(StoreLockedError, match="lost its lease on shopper_a on x before "
                           "its poll was recorded"):
            store.record_poll("x", [_reply(probe.id)], "c2", NOW, NOW, account="shopper_a")
        # Nothing of that poll reached the store.
        assert store.cursor("x", "shopper_a")[0] == "c1"
        assert store.replies() == []
        # A lapsed lease (no heartbeat for longer than the lease) fences the same way.
        with psycopg.connect(url, autocommit=True) as other:
            other.execute("UPDATE leases SET holder = %s, expires_at = "
                          "'2000-01-01T00:00:00.000Z' WHERE account = 'shopper_a'",
                          (leases.holder,))
        with pytest.raises(StoreLockedError):
            store.record_poll("x", [_reply(probe.id)], "c3", NOW, NOW, account="shopper_a")
        assert store.cursor("x", "shopper_a")[0] == "c1" and store.replies() == []
