"""A runner that lost its account's lease (another runner took the account over while this
one was silent) stops within moments, with one message saying why, and sends or reads nothing
more: even while it waits on the wall clock for a probe due in an hour."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import psycopg

from mystery.channels.memory import MemoryChannel
from mystery.clock import RealClock, iso
from mystery.collect.runner import Runner
from mystery.collect.together import run_together
from mystery.errors import StoreLockedError
from mystery.store.address import PostgresAddress
from mystery.store.leases import Leases
from mystery.store.store import Store
from mystery.study.model import Study
from mystery.study.plan import make_plan
from tests.postgres import PostgresServer

STUDY = Study.model_validate({
    "name": "lease-t", "year": 2026, "cutoff": "1d",
    "channels": {"x": {"accounts": ["shopper_a", "shopper_b"], "poll_every": "7m"}},
    "questions": [{"id": "q", "text": "Hi {brand}, are you open on Sundays?"}],
    "schedule": {"start": "2026-03-02", "end": "2026-03-02", "probes_per_brand": 1,
                 "min_gap": "1h", "seed": 4},
    "brands": [{"name": n, "handles": {"x": n.lower()}} for n in ("Acme", "Globex")],
})


def test_a_runner_whose_lease_was_taken_stops_promptly_on_postgres(
        postgres_server: PostgresServer) -> None:
    url = postgres_server.database()
    later = datetime.now(UTC) + timedelta(hours=1)
    with Store.open(url) as store:
        store.initialise(STUDY, make_plan(STUDY))
        with store.transaction() as db:  # nothing due for an hour: the runner waits
            db.execute("UPDATE probes SET planned_at = ?", (iso(later),))
    clock = RealClock()
    channel = MemoryChannel("x", clock)
    with Leases(PostgresAddress(url), {"x": "shopper_a"}, heartbeat=0.05) as leases, \
            Store.open(url) as store:
        store.lease_holder, store.lease_lost = leases.holder, leases.check
        runner = Runner(STUDY, store, {"x": channel}, clock, accounts={"x": "shopper_a"})

        def take_over() -> None:  # what a runner taking over a lapsed lease writes
            with psycopg.connect(url, autocommit=True) as other:
                other.execute("UPDATE leases SET holder = 'pid 1 on elsewhere #0'")

        ended: list[BaseException] = []

        def run() -> None:
            try:
                run_together([runner])
            except BaseException as exc:  # what the CLI would tell
                ended.append(exc)

        threading.Timer(0.5, take_over).start()
        started = time.monotonic()
        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        thread.join(timeout=10)
        waited = time.monotonic() - started
        assert not thread.is_alive(), "still waiting for its probes, an hour away"
    assert waited < 5
    [stopped] = ended
    assert isinstance(stopped, StoreLockedError)
    message = str(stopped)
    assert message.startswith("this runner lost its lease on shopper_a on x: another runner "
                              "took the account over")
    assert "run it again to resume safely" in message
    assert channel.posts == [] and channel.polls == []


def test_a_lease_is_let_go_even_while_the_runners_own_store_still_locks_it(
        postgres_server: PostgresServer) -> None:
    """A runner stopped in the middle of a send may reach its leases' release with its store's
    transaction still open and the lease rows locked by the send's fence. The release must not
    wait for that (in one process it would wait forever); the lease is free once the runner's
    sessions close, and the next runner takes it."""
    url = postgres_server.database()
    with Store.open(url) as store:
        store.initialise(STUDY, make_plan(STUDY))
    leases = Leases(PostgresAddress(url), {"x": "shopper_a"}, heartbeat=0.05).acquire()
    with psycopg.connect(url) as sending:  # the store's send, cut short with the fence held
        sending.execute("SELECT 1 FROM leases WHERE account = 'shopper_a' FOR SHARE")
        began = time.monotonic()
        leases.release()
        assert time.monotonic() - began < 10
    with Leases(PostgresAddress(url), {"x": "shopper_a"}) as again:  # free for the next one
        assert again.check() is None
