"""One runner for all of a team's accounts: ``mystery run STUDY`` on a study whose X channel
lists three researcher accounts, in the in-process sandbox, on SQLite and on PostgreSQL.

Each probe must go out from the account its plan names, each account must read its own
mentions (its own cursor), every reply must belong to a probe of the account it answered,
every timing must equal the sandbox's ground truth to the millisecond, and nothing may be sent
twice. On PostgreSQL the runner takes every account's lease or none: a runner already serving
one of them (``--account``) keeps it, and is named. ``--account`` repeated serves some
accounts: a runner for two and a runner for the third finish the study together.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mystery.cli import app
from mystery.collect.run import run_study
from mystery.collect.verify import mismatches
from mystery.sandbox import SandboxControl, SandboxServer
from mystery.store.address import PostgresAddress
from mystery.store.leases import Leases
from mystery.store.store import Store
from mystery.study.load import load_study
from tests.postgres import PostgresServer
from tests.rebuilt import assert_settled_and_posted_once_by_its_account, rebuilt_truth
from tests.studybuilder import study_data, write_study

ACCOUNTS = ["shopper_a", "shopper_b", "shopper_c"]
STUDY = study_data(
    name="team3",
    channels={"x": {"accounts": ACCOUNTS, "endpoint": "sandbox", "poll_every": "20m",
                    "safeguards": True}},
    questions=[{"id": "delivery", "text": "Hi {brand}, do you deliver on Saturdays?"},
               {"id": "hours", "text": "Hello {brand}, what time are you open until today?"},
               {"id": "returns", "text": "Hi {brand}, can I return a gift without a receipt?"}],
    schedule={"start": date(2026, 3, 2), "end": date(2026, 3, 5), "probes_per_brand": 3,
              "min_gap": "2h", "seed": 5},
    brands=[{"name": "Acme", "handles": {"x": "AcmeHelp"}, "profile": "quick"},
            {"name": "Globex", "handles": {"x": "GlobexCares"}, "profile": "slow"},
            {"name": "Initech", "handles": {"x": "InitechCS"}, "profile": "silent"},
            {"name": "Umbrella", "handles": {"x": "UmbrellaCo"}, "aliases": {"x": ["UmbHelp"]},
             "profile": "quick"}],
    sandbox={"seed": 2, "profiles": {"quick": {"ack_median": "30m", "resolve_after": "1h"},
                                     "slow": {"ack_median": "6h"},
                                     "silent": {"answer_rate": 0.0}}},
)


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The store: an SQLite file, or a fresh PostgreSQL database (``-k postgres``)."""
    if request.param == "sqlite":
        return str(tmp_path / "team3.db")
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.database()


def _truth(path: Path, store: Store) -> dict[str, Any]:
    """The in-process sandbox died with its run: rebuild its world from the store (every id
    and every reply time checked) and read its ground truth."""
    return rebuilt_truth(store, load_study(path).study)


def _run(*args: str) -> str:
    result = CliRunner().invoke(app, ["run", *args, "--quiet", "--no-report"])
    assert "Traceback" not in result.output
    assert result.exit_code == 0, result.output
    return result.output


def test_one_runner_serves_three_accounts_in_the_in_process_sandbox(
        tmp_path: Path, db: str) -> None:
    path = write_study(tmp_path, STUDY, "team3.toml")
    output = _run(str(path), "--db", db)
    assert "team3: finished: 12/12 probes sent" in output
    for account in ACCOUNTS:
        assert f"team3: x as {account}: 4/4 probes sent" in output
    with Store.open(db, create=False) as store:
        probes = store.probes()
        assert {p.state for p in probes} == {"settled"}
        assert Counter(p.account for p in probes) == dict.fromkeys(ACCOUNTS, 4)
        # Each account read its own mentions, and nothing else moved a cursor.
        cursors = list(store.db.execute("SELECT channel, account FROM cursors"))
        assert sorted(cursors) == [("x", a) for a in ACCOUNTS]
        # Every reply answers its own probe's account (a brand replies to whoever asked).
        by_id = {p.id: p for p in probes}
        replies = store.replies()
        assert replies
        for reply in replies:
            assert reply.text.startswith(f"@{by_id[reply.probe_id].account} ")
        truth = _truth(path, store)
        # One post per probe, made from the probe's account; every timing exact to the ms.
        assert Counter(p["text"] for p in truth["posts"]).most_common(1)[0][1] == 1
        assert mismatches(truth, store) == []
        # The brand safeguards hold across accounts: one open probe per brand, min_gap.
        for brand in {p.brand for p in probes}:
            mine = sorted((p for p in probes if p.brand == brand), key=lambda p: p.sent_at or 0)
            settled = dict(store.db.execute("SELECT id, settled_at FROM probes"))
            for first, second in pairwise(mine):
                assert first.sent_at and second.sent_at
                assert (second.sent_at - first.sent_at).total_seconds() >= 2 * 3600
                assert second.sent_at.isoformat() >= settled[first.id][:19]
            assert len({p.account for p in mine}) > 1  # a brand hears from several accounts

    # Resuming a finished study changes nothing (the world is rebuilt and checked).
    assert "team3: finished: 12/12" in _run(str(path), "--db", db)


def test_one_runner_for_some_accounts_in_the_in_process_sandbox_is_refused(
        tmp_path: Path) -> None:
    """The others' runners would need its world: still a standalone sandbox's job."""
    path = write_study(tmp_path, STUDY, "team3.toml")
    result = CliRunner().invoke(app, ["run", str(path), "--account", "shopper_a",
                                      "--account", "shopper_c", "--quiet"])
    assert result.exit_code == 1
    assert result.output.startswith(
        "Error: channels.x lists several accounts in the sandbox (shopper_a, shopper_b, "
        "shopper_c) and this runner serves shopper_a, shopper_c:")
    assert "drop --account" in result.output and "--sandbox-url" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["team3.toml"]


def test_an_all_accounts_runner_is_refused_while_one_account_is_served_on_postgres(
        tmp_path: Path, postgres_server: PostgresServer) -> None:
    """A teammate's ``--account shopper_b`` runner holds that lease: the runner for all three
    is refused, naming shopper_b and its runner, and takes no lease at all (all or nothing)."""
    url = postgres_server.database()
    path = write_study(tmp_path, STUDY, "team3.toml")
    Store.open(url).close()
    with Leases(PostgresAddress(url), {"x": "shopper_b"}) as teammate:
        result = CliRunner().invoke(app, ["run", str(path), "--db", url, "--quiet"])
        assert result.exit_code == 1
        assert "Traceback" not in result.output
        assert result.output.startswith(
            f"Error: account shopper_b on x is served by another runner ({teammate.holder}")
        with Store.open(url) as store:
            held = dict(store.db.execute("SELECT account, holder FROM leases"))
            assert store.count(("sending", "sent", "settled")) == 0
    assert held["shopper_b"] == teammate.holder
    assert held.get("shopper_a", "") == held.get("shopper_c", "") == ""  # none taken


def test_an_account_runner_is_refused_while_the_all_accounts_runner_serves_it_on_postgres(
        tmp_path: Path, postgres_server: PostgresServer, sandbox: SandboxServer) -> None:
    url = postgres_server.database()
    path = write_study(tmp_path, STUDY, "team3.toml")
    Store.open(url).close()
    every = [("x", a) for a in ACCOUNTS]
    with Leases(PostgresAddress(url), every) as one_runner:
        result = CliRunner().invoke(app, ["run", str(path), "--db", url, "--account",
                                          "shopper_c", "--sandbox-url", sandbox.url,
                                          "--quiet"])
    assert result.exit_code == 1
    assert result.output.startswith(
        f"Error: account shopper_c on x is served by another runner ({one_runner.holder}")


def test_a_runner_for_two_accounts_and_one_for_the_third_take_turns(
        tmp_path: Path, sandbox: SandboxServer, control: SandboxControl) -> None:
    """``--account`` repeated: one runner serves shopper_a and shopper_b, another shopper_c,
    taking turns on one standalone sandbox; together they finish the study exactly."""
    path = write_study(tmp_path, STUDY, "team3.toml")
    served = [["shopper_a", "shopper_b"], ["shopper_c"]]
    finished = [False, False]
    for _ in range(200):
        if all(finished):
            break
        step = control.now() + timedelta(hours=2)
        for i, accounts in enumerate(served):
            _, result = run_study(path, sandbox_url=sandbox.url, account=accounts, until=step)
            finished[i] = result.finished
        if control.now() < step:
            control.advance_to(step)
    assert all(finished), "the team study does not finish"
    truth = control.posts()
    with Store.open(path.with_suffix(".db"), create=False) as store:
        probes = store.probes()
        assert_settled_and_posted_once_by_its_account(truth, probes)
        assert sorted(store.db.execute("SELECT account FROM cursors")) == [
            (a,) for a in ACCOUNTS]
        assert mismatches(truth, store) == []
