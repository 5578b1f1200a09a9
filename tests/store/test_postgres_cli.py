"""A study on a PostgreSQL store, through the CLI: the same timings as on SQLite, byte for
byte; every wrong URL or database one message, exit 1, nothing written; the URL's password in
no output, notice or table.

(The store's and the runner's own tests run on both stores through the ``store_at`` fixture;
these are the promises only PostgreSQL has to keep.)
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from mystery.cli import app
from mystery.collect.run import account_pairs, served_accounts
from mystery.store.address import PostgresAddress
from mystery.store.leases import Leases
from mystery.store.store import Store
from mystery.study.load import load_study
from tests.postgres import PASSWORD, PostgresServer, dump, tables

REPO = Path(__file__).resolve().parents[2]


def _demo(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("demo.toml", "demo-brands.csv"):
        shutil.copy(REPO / "studies" / name, folder / name)
    return folder / "demo.toml"


def _run(study: Path, *args: str) -> Result:
    return CliRunner().invoke(app, ["run", str(study), "--quiet", *args])


def _everything_written(folder: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in folder.rglob("*") if p.is_file())


def test_the_demo_on_postgres_gives_the_sqlite_timings_byte_for_byte(
    tmp_path: Path, postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    sqlite_demo, pg_demo = _demo(tmp_path / "sqlite"), _demo(tmp_path / "postgres")
    monkeypatch.chdir(sqlite_demo.parent)
    assert _run(sqlite_demo).exit_code == 0
    url = postgres_server.database()
    monkeypatch.chdir(pg_demo.parent)
    result = _run(pg_demo, "--db", url)
    assert result.exit_code == 0, result.output

    timings = (pg_demo.parent / "results" / "demo" / "timings.csv").read_bytes()
    assert timings == (sqlite_demo.parent / "results" / "demo" / "timings.csv").read_bytes()
    assert timings == (REPO / "results" / "demo" / "timings.csv").read_bytes()
    assert not (pg_demo.parent / "demo.db").exists()  # the store is the database alone
    # The password is in no output, no file written and no row of the store.
    assert PASSWORD not in result.output
    assert PASSWORD not in _everything_written(pg_demo.parent)
    assert "demo" in dump(postgres_server, url) and PASSWORD not in dump(postgres_server, url)

    again = _run(pg_demo, "--db", url, "--no-report")  # finished: nothing to do, nothing sent
    assert again.exit_code == 0 and "finished" in again.output


def _refused(result: Result, *fragments: str) -> None:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in result.output
    assert PASSWORD not in result.output


@pytest.mark.parametrize(("url", "expected"), [
    ("postgresql://mystery:{pw}@127.0.0.1:{closed}/study", "check that the server runs"),
    ("postgresql://mystery:wrong-{pw}@127.0.0.1:{port}/{db}", "check the user and password"),
    ("postgresql://mystery:{pw}@127.0.0.1:{port}/no_such_db", "create the study's database"),
    ("postgresql://mystery:{pw}@/study", "no host in the PostgreSQL URL"),
    ("postgresql://mystery:{pw}@127.0.0.1:{port}", "no database name"),
    ("mysql://mystery:{pw}@127.0.0.1/study", "not a store mystery knows"),
], ids=["postgres-unreachable", "postgres-wrong-password", "postgres-no-database",
        "postgres-no-host", "postgres-no-dbname", "postgres-other-scheme"])
def test_a_wrong_postgres_url_is_one_message_and_nothing_is_written(
    tmp_path: Path, postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch,
    url: str, expected: str,
) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]  # nobody listens there once the socket is closed
    db = postgres_server.database()
    url = url.format(pw=PASSWORD, closed=closed, port=postgres_server.port,
                     db=db.rsplit("/", 1)[1])
    demo = _demo(tmp_path)
    monkeypatch.chdir(tmp_path)
    _refused(_run(demo, "--db", url), expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo-brands.csv", "demo.toml"]
    assert tables(postgres_server, db) == []


def test_a_database_of_another_study_is_refused_and_left_as_it_was(
    tmp_path: Path, postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = postgres_server.database()
    demo = _demo(tmp_path / "demo")
    monkeypatch.chdir(tmp_path)
    assert _run(demo, "--db", url, "--once", "--no-report").exit_code == 0
    before = dump(postgres_server, url)
    other = tmp_path / "other" / "other.toml"
    other.parent.mkdir()
    shutil.copy(demo.parent / "demo-brands.csv", other.parent)
    other.write_text(demo.read_text().replace('name = "demo"', 'name = "other"', 1))
    _refused(_run(other, "--db", url), "belongs to study 'demo', not 'other'",
             "pass a different --db")
    assert dump(postgres_server, url) == before
    assert not (tmp_path / "results" / "other").exists()


def test_a_database_of_another_program_is_refused_untouched(
    tmp_path: Path, postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = postgres_server.database()
    postgres_server.psql("CREATE TABLE invoices (id int)", url.rsplit("/", 1)[1])
    monkeypatch.chdir(tmp_path)
    _refused(_run(_demo(tmp_path), "--db", url), "is not a mystery store",
             "give each study its own database")
    assert tables(postgres_server, url) == ["invoices"]


def test_a_second_runner_for_the_same_accounts_is_refused_naming_the_first(
    tmp_path: Path, postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = postgres_server.database()
    monkeypatch.chdir(tmp_path)
    demo = _demo(tmp_path)
    Store.open(url).close()
    before = dump(postgres_server, url)
    accounts = account_pairs(served_accounts(load_study(demo).study))
    with Leases(PostgresAddress(url), accounts) as first:
        _refused(_run(demo, "--db", url), "is served by another runner", first.holder,
                 "one runner per account")
    # Refused before anything was sent or read: at most the (deterministic) plan went in.
    with Store.open(url) as store:
        assert store.untouched() and store.count(("planned",)) == 66
    assert "CREATE TABLE public.leases" in before


def test_a_run_that_fails_before_recording_anything_leaves_the_database_empty(
    tmp_path: Path, postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = postgres_server.database()
    monkeypatch.chdir(tmp_path)
    result = _run(_demo(tmp_path), "--db", url, "--sandbox-url", "http://127.0.0.1:9")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert tables(postgres_server, url) == []


def test_postgres_urls_are_printed_without_their_password() -> None:
    from mystery.store.address import redact

    assert str(PostgresAddress(f"postgresql://ann:{PASSWORD}@db.example:5432/uk")) == \
        "postgresql://ann:***@db.example:5432/uk"
    assert redact(f"postgresql://ann@db.example/uk?password={PASSWORD}&sslmode=require") == \
        "postgresql://ann@db.example/uk?password=***&sslmode=require"
    assert PASSWORD not in repr(PostgresAddress(f"postgresql://ann:{PASSWORD}@h/uk"))


def test_the_live_view_names_the_teams_other_runners(postgres_server: PostgresServer) -> None:
    import os
    from datetime import UTC, datetime

    from rich.text import Text

    from mystery.cli.liveview import _details, _read
    from mystery.collect.progress import Progress

    url = postgres_server.database()
    Store.open(url).close()
    with Leases(PostgresAddress(url), {"x": "shopper_b"}), Store.open(url) as store:
        store.lease_holder = "this runner"
        frame = _read(Progress(now=datetime(2026, 3, 2, tzinfo=UTC), store=store, virtual=True))
        shown = [str(t) for t in _details(frame) if isinstance(t, Text)]
    [other] = frame.others
    assert other.startswith(f"shopper_b on x: pid {os.getpid()} on ")
    assert "since " in other and "heartbeat 0 s ago" in other
    assert f"other runner: {other}" in shown
    with Store.open(url) as store:  # released: nobody else at work
        assert store.other_runners() == []


def test_a_runner_for_an_account_the_study_lacks_writes_nothing_to_postgres(
    tmp_path: Path, postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = postgres_server.database()
    monkeypatch.chdir(tmp_path)
    _refused(_run(_demo(tmp_path), "--db", url, "--account", "nobody"),
             "--account nobody: the study has no such account")
    assert tables(postgres_server, url) == []
