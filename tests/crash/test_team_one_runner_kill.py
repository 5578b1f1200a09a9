"""One runner for three X accounts, stopped at any moment and run again, ends as if undisturbed.

``mystery run team.toml`` serves every account of a team study in the in-process sandbox,
which dies with the run. It is stopped over and over — Ctrl-C (SIGINT), SIGTERM and SIGKILL,
at seeded moments spread over the run by the store's progress — and run again each time with
the very same command, until it finishes; on SQLite and on PostgreSQL (``-k postgres``).
Then:

- no probe was posted twice, at any moment: one successful attempt and one id per probe;
- every probe went out at its planned instant, from its own account (a brand replies to the
  account that asked it), and the timings equal an undisturbed run's;
- the world rebuilt from the final store agrees with it to the millisecond.
"""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import pytest

from mystery.collect.verify import mismatches
from mystery.store.store import Store
from mystery.study.load import load_study
from mystery.timings.export import timing_rows
from tests import studybuilder
from tests.crash.crash_helpers import PYTHON, STUDY, hears_signals, sigint_heard
from tests.crash.test_resume_in_process import INTERRUPTED
from tests.postgres import PostgresServer
from tests.rebuilt import rebuilt_truth

ACCOUNTS = ["shopper_a", "shopper_b", "shopper_c"]
PROFILES = ["fast", "holding", "never", "patchy", "alias", "slow"]
BRANDS = 12
PROBES = BRANDS * 3
STOPS = [signal.SIGINT, signal.SIGTERM, signal.SIGKILL] * 3
SEED = 21


def _study(folder: Path) -> Path:
    brands: list[dict[str, Any]] = []
    for n, profile in enumerate(PROFILES * (BRANDS // len(PROFILES))):
        brands.append({"name": f"Brand {n}", "profile": profile, "handles": {"x": f"brand{n}"}})
        if profile == "alias":
            brands[-1]["aliases"] = {"x": [f"brand{n}help"]}
    channels = {"x": {"accounts": ACCOUNTS, "endpoint": "sandbox", "mode": "auto",
                      "poll_every": "30m"}}
    return studybuilder.write_study(folder, {**STUDY, "name": "team", "channels": channels},
                                    "team.toml", brands=brands,
                                    schedule={**STUDY["schedule"], "end": date(2026, 3, 5)})


@pytest.fixture(params=["sqlite", "postgres"])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Two stores of one kind: for the undisturbed run and for the stopped one."""
    if request.param == "sqlite":
        yield str(tmp_path / "undisturbed.db"), str(tmp_path / "stopped.db")
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    yield server.database(), server.database()


def _command(study: Path, db: str) -> list[str]:
    return [PYTHON, "-m", "mystery", "run", str(study), "--db", db, "--quiet", "--no-report"]


def _rows(db: str, sql: str) -> list[tuple[Any, ...]]:
    """A query's rows, read beside the runner; none while the store is being made."""
    try:
        if db.startswith("postgresql://"):
            with psycopg.connect(db, autocommit=True) as con:
                return [tuple(r) for r in con.execute(sql).fetchall()]
        if not Path(db).exists():
            return []
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as lite:
            rows = lite.execute(sql).fetchall()
        lite.close()
        return rows
    except (sqlite3.OperationalError, psycopg.errors.UndefinedTable):
        return []


def _progress(db: str) -> int:
    """Probes sent plus probes settled (0 to twice the probes)."""
    rows = _rows(db, "SELECT count(message_id) + sum(CASE WHEN state = 'settled' THEN 1 "
                     "ELSE 0 END) FROM probes")
    return int(rows[0][0] or 0) if rows else 0


def _never_sent_twice(db: str) -> None:
    made = _rows(db, "SELECT probe_id FROM send_attempts WHERE outcome IN ('sent', "
                     "'reconciled') GROUP BY probe_id HAVING count(*) > 1")
    assert made == [], f"posted more than once: {made}"
    ids = _rows(db, "SELECT count(message_id), count(DISTINCT message_id) FROM probes")
    assert not ids or ids[0][0] == ids[0][1], f"two probes share a post id: {ids}"


def test_one_runner_for_three_accounts_stopped_at_any_moment_resumes_exactly(
        tmp_path: Path, stores: tuple[str, str]) -> None:
    started = time.monotonic()
    study = _study(tmp_path)
    calm, db = stores
    undisturbed = subprocess.run(_command(study, calm), capture_output=True, text=True,
                                 timeout=300, check=False)
    assert undisturbed.returncode == 0, undisturbed.stderr
    with Store.open(calm, create=False) as store:
        expected = timing_rows(store)

    rng = random.Random(SEED)
    aims = sorted(rng.randint(1, 2 * PROBES - 1) for _ in STOPS)
    stops = list(STOPS)
    rng.shuffle(stops)
    stopped: list[tuple[str, int, int]] = []
    for aim, stop in zip(aims, stops, strict=True):
        with sigint_heard():
            runner = subprocess.Popen(_command(study, db), stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 120
            while (runner.poll() is None and time.monotonic() < deadline
                   and (not hears_signals(runner) or _progress(db) < aim)):
                time.sleep(0.003)
            time.sleep(rng.uniform(0, 0.02))
            if runner.poll() is not None:  # it finished the study before this moment
                _, err = runner.communicate()
                assert runner.returncode == 0, err
                break
            runner.send_signal(stop)
            _, err = runner.communicate(timeout=60)
        finally:
            if runner.poll() is None:
                runner.kill()
                runner.communicate()
        stopped.append((stop.name, aim, _progress(db)))
        assert "Traceback" not in err, err
        if stop is signal.SIGKILL:
            assert runner.returncode in (-signal.SIGKILL, 0), err
        elif runner.returncode != 0:  # 0: it finished just as the signal came
            assert runner.returncode == 130, (stop, err)
            assert err.strip().endswith(INTERRUPTED), (stop, err)
        _never_sent_twice(db)

    final = subprocess.run(_command(study, db), capture_output=True, text=True, timeout=300,
                           check=False)
    print(f"\nstopped {len(stopped)} times (signal, aimed at, reached): {stopped}; "
          f"{time.monotonic() - started:.1f} s wall")
    assert final.returncode == 0, final.stderr
    assert f"team: finished: {PROBES}/{PROBES} probes sent" in final.stderr
    assert len(stopped) >= 6
    _never_sent_twice(db)

    loaded = load_study(study).study
    with Store.open(db, create=False) as store:
        assert timing_rows(store) == expected
        probes = store.probes()
        assert all(p.sent_at == p.planned_at for p in probes)
        assert {p.account for p in probes} == set(ACCOUNTS)
        by_id = {p.id: p for p in probes}
        for reply in store.replies():
            assert reply.text.startswith(f"@{by_id[reply.probe_id].account} ")
        truth = rebuilt_truth(store, loaded)
        assert mismatches(truth, store) == []
    assert len({p["text"] for p in truth["posts"]}) == len(truth["posts"]) == PROBES
