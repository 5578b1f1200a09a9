"""The store keeps rules 3 and 4 by construction: migrations on open, atomic and idempotent
poll records, send attempts that say how each ended, and exclusions that carry their reason."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mystery.clock import iso
from mystery.store.store import MIGRATIONS, ReplyRow, Store
from mystery.study.model import Study
from mystery.study.plan import make_plan
from mystery.timings.export import timing_rows

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _study() -> Study:
    return Study.model_validate({
        "name": "store-t", "year": 2026, "cutoff": "2d",
        "channels": {"x": {"account": "researcher"}},
        "questions": [{"id": "q", "text": "Hi {brand}, are you open on Sundays?"}],
        "schedule": {"start": "2026-03-02", "end": "2026-03-03", "probes_per_brand": 1,
                     "min_gap": "1h"},
        "brands": [{"name": "Acme", "handles": {"x": "acme"}},
                   {"name": "Globex", "handles": {"x": "globex"}}],
    })


@pytest.fixture
def store(store_at: Callable[[], str]) -> Iterator[Store]:
    """A planned store, on SQLite and on PostgreSQL: every test taking it runs on both."""
    with Store.open(store_at()) as opened:
        opened.initialise(_study(), make_plan(_study()))
        yield opened


def _reply(probe_id: str, message_id: str, at: datetime) -> ReplyRow:
    return ReplyRow("x", message_id, probe_id, "acme", "Yes, we are.", at, "1", "1",
                    "resolution")


def _sent(store: Store, probe_id: str, message_id: str = "1") -> None:
    store.begin_send(probe_id, T0)
    store.mark_sent(probe_id, message_id, T0, "@acme hi", T0)


# -- migrations --------------------------------------------------------------------------------



def _initialise_as_before_accounts(store: Store) -> None:
    """What ``Store.initialise`` wrote before probes had an account (m001 to m006)."""
    with store.transaction() as db:
        db.executemany("INSERT INTO meta VALUES (?, ?)", [
            ("study", "store-t"), ("series", "store-t"), ("year", "2026"),
            ("cutoff_seconds", "172800.0"), ("study_digest", _study().digest),
            ("brands", "{}")])
        db.executemany(
            "INSERT INTO probes (id, brand, channel, question, text, planned_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [(p.id, p.brand, p.channel, p.question, p.text, iso(p.planned_at))
             for p in make_plan(_study())])


def test_a_store_from_before_accounts_learns_them_from_the_plan(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "old.db"
    with monkeypatch.context() as patched:  # not undo(): that would end the clean room too
        patched.setattr("mystery.store.store.MIGRATIONS", MIGRATIONS[:6])
        with Store.open(path) as old:
            _initialise_as_before_accounts(old)
            old.db.execute("INSERT INTO cursors VALUES ('x', '41', ?, ?)",
                           (iso(T0), iso(T0)))

    with Store.open(path) as new:
        assert {p.account for p in new.probes()} == {""}  # the migration cannot know them
        assert new.initialise(_study(), make_plan(_study())) is False
        assert {p.account for p in new.probes()} == {"researcher"}
        assert new.cursor("x", "researcher")[0] == "41"  # the poll resumes where it stopped
        assert new.cursor("x", "someone_else") == (None, None)


def test_each_account_has_its_own_cursor_and_the_runner_sees_only_its_probes(
        tmp_path: Path) -> None:
    study = Study.model_validate({**_study().model_dump(exclude_defaults=True),
                                  "channels": {"x": {"accounts": ["shopper_a", "shopper_b"]}}})
    with Store.open(tmp_path / "team.db") as store:
        store.initialise(study, make_plan(study))
        assert {p.account for p in store.probes()} == {"shopper_a", "shopper_b"}
        store.record_poll("x", [], "a-1", T0, T0, account="shopper_a")
        store.record_poll("x", [], "b-1", T0, T0, account="shopper_b")
        assert store.cursor("x", "shopper_a")[0] == "a-1"
        assert store.cursor("x", "shopper_b")[0] == "b-1"
        mine = next(p for p in store.probes() if p.account == "shopper_a")
        theirs = next(p for p in store.probes() if p.account == "shopper_b")
        store.begin_send(theirs.id, T0)  # another account's runner is sending
        store.serve({"x": "shopper_a"})
        assert not store.any_in(("sending",), ["x"])
        assert [p.id for p in store.due_probes(T0 + timedelta(days=3))] == [mine.id]
        assert store.probes(state="sending", channel="x") == []
        assert len(store.probes()) == 2  # what is not the runner's own still counts
        store.serve({})
        assert store.any_in(("sending",), ["x"])


def _failed(store: Store, probe_id: str) -> int:
    """Attempts that reached the platform and failed there (not crashes, not waits)."""
    return [a[1] for a in store.attempts(probe_id)].count("failed")

def test_an_old_store_is_migrated_on_open_and_keeps_its_data(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    path = tmp_path / "old.db"
    with monkeypatch.context() as patched:
        patched.setattr("mystery.store.store.MIGRATIONS", MIGRATIONS[:1])  # a v0.1 store
        with Store.open(path) as old:
            _initialise_as_before_accounts(old)
            _sent(old, "p0001")
            assert "flags" not in {r[0] for r in old.db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}

    with Store.open(path) as new:
        applied = [r[0] for r in new.db.execute("SELECT name FROM migrations ORDER BY name")]
        assert applied == [name for name, _ in MIGRATIONS]
        assert new.probes_by_id(["p0001"])[0].message_id == "1"  # data kept
        new.exclude("p0002", "not_sent", "not sent after 5 failed attempts", T0)
        assert [(f.probe_id, f.kind) for f in new.flags()] == [("p0002", "not_sent")]
    with Store.open(path) as again:  # applied once only
        assert again.db.execute("SELECT count(*) FROM migrations").fetchone()[0] == len(
            MIGRATIONS)


def test_a_migration_applies_wholly_or_not_at_all(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(db: sqlite3.Connection) -> None:
        db.execute("CREATE TABLE half (x)")
        raise sqlite3.OperationalError("disk full")

    with monkeypatch.context() as patched:
        patched.setattr("mystery.store.store.MIGRATIONS",
                        [*MIGRATIONS, ("m999_broken", broken)])
        with pytest.raises(sqlite3.OperationalError):
            Store.open(tmp_path / "s.db")
    with Store.open(tmp_path / "s.db") as store:
        tables = {r[0] for r in store.db.execute("SELECT name FROM sqlite_master")}
    assert "half" not in tables and "probes" in tables


# -- polls -------------------------------------------------------------------------------------


def test_recording_a_poll_twice_changes_nothing(store: Store) -> None:
    _sent(store, "p0001")
    replies = [_reply("p0001", "10", T0 + timedelta(minutes=5)),
               _reply("p0001", "11", T0 + timedelta(minutes=9))]
    assert store.record_poll("x", replies, "11", T0 + timedelta(minutes=10), T0) == 2
    before = store.replies()
    assert store.record_poll("x", replies[::-1] + replies, "11", T0 + timedelta(minutes=10),
                             T0) == 0
    assert store.replies() == before
    assert store.cursor("x") == ("11", T0 + timedelta(minutes=10))


def test_replies_and_their_cursor_commit_together_or_not_at_all(store: Store) -> None:
    import psycopg

    _sent(store, "p0001")
    store.record_poll("x", [], "5", T0, T0)
    bad = [_reply("p0001", "10", T0), _reply("nope", "11", T0)]  # unknown probe: refused
    with pytest.raises((sqlite3.IntegrityError, psycopg.IntegrityError)):
        store.record_poll("x", bad, "11", T0 + timedelta(hours=1), T0)
    assert store.replies() == []
    assert store.cursor("x") == ("5", T0)  # the cursor did not move past the lost reply


def test_polled_through_never_goes_back(store: Store) -> None:
    store.record_poll("x", [], "7", T0 + timedelta(hours=2), T0)
    store.record_poll("x", [], "8", T0 + timedelta(hours=1), T0)
    assert store.cursor("x") == ("8", T0 + timedelta(hours=2))


def test_a_poll_flags_the_probes_it_cannot_vouch_for_in_the_same_commit(store: Store) -> None:
    _sent(store, "p0001")
    store.record_poll("x", [], "9", T0, T0, excluded=[("p0001", "beyond reach")])
    [flag] = store.flags()
    assert (flag.probe_id, flag.kind, flag.reason) == ("p0001", "reach", "beyond reach")
    [row] = [r for r in timing_rows(store) if r["sent_at"] == T0]
    assert row["status"] == "excluded" and row["ack_seconds"] is None


# -- sends -------------------------------------------------------------------------------------


def test_send_attempts_say_how_each_ended(store: Store) -> None:
    store.begin_send("p0001", T0)
    assert store.probes_by_id(["p0001"])[0].state == "sending"
    store.mark_uncertain("p0001", "timeout", T0)
    assert store.probes_by_id(["p0001"])[0].state == "sending"  # still to be reconciled
    store.abort_send("p0001", "not on our timeline", T0, outcome="failed")
    store.begin_send("p0001", T0)
    store.abort_send("p0001", "not on our timeline", T0, outcome="interrupted")
    store.begin_send("p0001", T0)
    store.abort_send("p0001", "429", T0)
    assert [a[1] for a in store.attempts("p0001")] == ["failed", "interrupted", "not sent"]
    assert _failed(store, "p0001") == 1  # only failures at the platform count
    assert store.probes_by_id(["p0001"])[0].state == "planned"


def test_a_probe_never_sent_is_an_excluded_row_without_times(store: Store) -> None:
    store.exclude("p0002", "not_sent", "not sent after 5 failed attempts", T0)
    [row] = timing_rows(store)
    assert (row["status"], row["sent_at"], row["ack_seconds"]) == ("excluded", None, None)


def test_the_next_planned_probe_is_named_with_its_time(store: Store) -> None:
    found = store.next_planned()
    first = min(store.probes(), key=lambda p: (p.planned_at, p.id))
    assert found == (first.id, first.planned_at)
    assert store.next_planned(after=first.planned_at) != found
    assert store.next_planned(["mastodon"]) is None


def test_one_probe_has_one_outcome_in_the_counts_as_in_the_timings(store: Store) -> None:
    """A reply past the cutoff leaves the probe unanswered, not acknowledged too; a reply the
    main coder calls not the brand's acknowledges nothing; a manual resolution code resolves."""
    late, recoded, *_ = [p.id for p in store.probes()]
    _sent(store, late, "1")
    _sent(store, recoded, "2")
    cutoff = timedelta(days=2)
    store.record_poll("x", [
        _reply(late, "r1", T0 + cutoff + timedelta(milliseconds=1)),  # just too late
        ReplyRow("x", "r2", recoded, "acme", "Please DM us", T0 + timedelta(minutes=5), "2",
                 "2", "acknowledgement"),
        _reply(recoded, "r3", T0 + cutoff),  # on the cutoff: in time
    ], None, T0, T0)
    store.settle(late, "unanswered", T0 + cutoff)
    counts = store.counts()
    assert (counts.acknowledged, counts.resolved, counts.unanswered) == (1, 1, 1)
    assert counts.acknowledged + counts.unanswered <= counts.sent
    store.set_code("x", "r2", "not_brand", "alice", T0)  # alice codes first: the main coder
    store.set_code("x", "r3", "acknowledgement", "alice", T0)
    counts = store.counts()
    assert (counts.acknowledged, counts.resolved) == (1, 0)  # r3 acknowledges, nothing resolves
    assert store.channel_counts()["x"].acknowledged == counts.acknowledged
    assert [r["status"] for r in timing_rows(store)] == ["unanswered"]  # as the counts say


def test_counts_per_channel_add_up_to_the_counts(store_at: Callable[[], str]) -> None:
    study = Study.model_validate({
        "name": "store-t", "year": 2026, "cutoff": "2d",
        "channels": {"x": {"account": "researcher"}, "mastodon": {"account": "researcher"}},
        "questions": [{"id": "q", "text": "Hi {brand}, are you open on Sundays?"}],
        "schedule": {"start": "2026-03-02", "end": "2026-03-03", "probes_per_brand": 1,
                     "min_gap": "1h"},
        "brands": [{"name": n, "handles": {"x": n.lower(), "mastodon": f"{n.lower()}@m.example"}}
                   for n in ("Acme", "Globex", "Initech")],
    })
    with Store.open(store_at()) as store:
        store.initialise(study, make_plan(study))
        on = {c: [p.id for p in store.probes(channel=c)] for c in ("x", "mastodon")}
        for n, probe_id in enumerate(on["x"][:2]):  # two sent on x, one of them answered
            _sent(store, probe_id, str(n + 1))
        store.record_poll("x", [_reply(on["x"][0], "r1", T0 + timedelta(minutes=5)),
                                _reply(on["x"][0], "r2", T0 + timedelta(minutes=9))],
                          None, T0, T0)
        store.settle(on["x"][0], "answered", T0)
        store.settle(on["x"][1], "unanswered", T0)
        store.exclude(on["mastodon"][0], "rejected", "refused", T0)
        by_channel = store.channel_counts()
        total = store.counts()

    assert list(by_channel) == ["mastodon", "x"]
    x, mastodon = by_channel["x"], by_channel["mastodon"]
    assert (x.planned, x.sent, x.acknowledged, x.resolved, x.unanswered, x.settled) == \
        (3, 2, 1, 1, 1, 2)
    assert (mastodon.planned, mastodon.sent, mastodon.acknowledged, mastodon.settled) == \
        (3, 0, 0, 1)
    for field in ("planned", "sent", "acknowledged", "resolved", "unanswered", "settled"):
        assert getattr(x, field) + getattr(mastodon, field) == getattr(total, field), field


def test_the_last_send_is_the_latest_sent_or_planned_time_of_a_probe_that_goes_out(
    store: Store,
) -> None:
    first, second = sorted(store.probes(), key=lambda p: p.planned_at)
    assert store.last_send_at() == second.planned_at
    store.exclude(second.id, "rejected", "refused", T0)
    assert store.last_send_at() == first.planned_at  # an excluded probe never goes out
    later = first.planned_at + timedelta(hours=3)
    store.begin_send(first.id, later)
    store.mark_sent(first.id, "1", later, "@acme hi", later)
    assert store.last_send_at() == later  # sent late: the study ends later


def test_next_planned_at_can_look_at_some_channels_only(store: Store) -> None:
    first = store.next_planned_at()
    assert first is not None and store.next_planned_at(["x"]) == first
    assert store.next_planned_at(["mastodon"]) is None


def test_two_runners_reserving_the_last_of_a_budget_get_it_once(
    store_at: Callable[[], str],
) -> None:
    """Counts are added and checked in one transaction: two runners, each with its own
    connection, reaching for the last post a budget allows at the same moment, get it once."""
    import threading

    where = store_at()
    with Store.open(where) as first:
        first.initialise(_study(), make_plan(_study()))
        first.add_counts("spend:x", {"posts": 2})
    barrier = threading.Barrier(2, timeout=30)
    outcomes: list[bool] = []

    def reserve() -> None:
        with Store.open(where, create=False) as store:
            barrier.wait()
            outcomes.append(store.add_counts("spend:x", {"posts": 1},
                                             within=lambda c: c["posts"] <= 3)[1])

    threads = [threading.Thread(target=reserve) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == [False, True]
    with Store.open(where, create=False) as store:
        assert store.add_counts("spend:x", {}) == ({"posts": 3}, True)


def test_a_transaction_left_suspended_by_an_interrupt_closes_quietly_after_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C between the transaction's BEGIN and the caller's ``with`` leaves the generator
    suspended; the store closes on the way out, then the garbage collector closes the
    generator. That printed 'Exception ignored … Cannot operate on a closed database', a
    traceback after 'Interrupted', in the demo's interrupt test once in a few dozen stops."""
    import gc
    import sys

    unraisable: list[object] = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    store = Store.open(tmp_path / "s.db")
    suspended = store.transaction()
    suspended.__enter__()  # BEGIN ran; the interrupt lands before the with block
    store.close()
    del suspended
    gc.collect()
    assert unraisable == []
    again = Store.open(tmp_path / "s.db")  # nothing was left locked or half-written
    with again.transaction() as db:
        db.execute("SELECT 1")
    again.close()
