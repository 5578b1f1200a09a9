"""``mystery store copy``: a study moves between SQLite and PostgreSQL and back with every
timing as it was, mid-run as well as finished; a copy over a store, of another study's store,
or onto itself is refused with one message and writes nothing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from mystery.cli import app
from tests.postgres import PASSWORD, PostgresServer, dump, tables

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("demo.toml", "demo-brands.csv"):
        shutil.copy(REPO / "studies" / name, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    return tmp_path / "demo.toml"


def _cli(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def _timings(demo: Path, db: str, results: str) -> bytes:
    assert _cli("export", str(demo), "--db", db, "--results", results).exit_code == 0
    return (demo.parent / results / "demo" / "timings.csv").read_bytes()


def test_a_study_begun_on_sqlite_is_finished_on_postgres_and_copied_back_unchanged(
    demo: Path, postgres_server: PostgresServer
) -> None:
    # Begun on a laptop: a few passes, probes sent and some still open.
    assert _cli("run", str(demo), "--once", "--quiet", "--no-report").exit_code == 0
    url = postgres_server.database()
    moved = _cli("store", "copy", str(demo), "--to", url)
    assert moved.exit_code == 0, moved.output
    assert "timings are identical in both" in moved.output and PASSWORD not in moved.output
    assert (demo.parent / "demo.db").exists()  # the original stays

    # Finished on the team's database: the same timings as a run that never moved.
    finished = _cli("run", str(demo), "--db", url, "--quiet", "--no-report")
    assert finished.exit_code == 0, finished.output
    on_postgres = _timings(demo, url, "pg")
    assert on_postgres == (REPO / "results" / "demo" / "timings.csv").read_bytes()

    # And back into a file to archive it, row for row.
    back = str(demo.parent / "archive.db")
    assert _cli("store", "copy", str(demo), "--from", url, "--to", back).exit_code == 0
    assert _timings(demo, back, "archive") == on_postgres
    again = _cli("run", str(demo), "--db", back, "--quiet", "--no-report")
    assert again.exit_code == 0 and "finished" in again.output


def _refused(result: Result, fragment: str) -> None:
    assert result.exit_code == 1, result.output
    assert fragment in result.output and "Traceback" not in result.output
    assert PASSWORD not in result.output


def test_a_copy_over_a_store_of_its_own_or_onto_itself_is_refused(
    demo: Path, postgres_server: PostgresServer
) -> None:
    assert _cli("run", str(demo), "--once", "--quiet", "--no-report").exit_code == 0
    url = postgres_server.database()
    assert _cli("store", "copy", str(demo), "--to", url).exit_code == 0
    before = dump(postgres_server, url)
    _refused(_cli("store", "copy", str(demo), "--to", url), "already holds study 'demo'")
    assert dump(postgres_server, url) == before
    _refused(_cli("store", "copy", str(demo), "--from", url, "--to", url),
             "--from and --to are the same store")


def test_a_copy_of_another_studys_store_writes_nothing(
    demo: Path, postgres_server: PostgresServer
) -> None:
    assert _cli("run", str(demo), "--once", "--quiet", "--no-report").exit_code == 0
    other = demo.parent / "other.toml"
    other.write_text(demo.read_text().replace('name = "demo"', 'name = "other"', 1))
    url = postgres_server.database()
    _refused(_cli("store", "copy", str(other), "--from", str(demo.parent / "demo.db"),
                  "--to", url), "belongs to study 'demo', not 'other'")
    assert tables(postgres_server, url) == []
    _refused(_cli("store", "copy", str(other), "--from", str(demo.parent / "demo.db"),
                  "--to", str(demo.parent / "new.db")), "belongs to study 'demo'")
    assert not (demo.parent / "new.db").exists()
