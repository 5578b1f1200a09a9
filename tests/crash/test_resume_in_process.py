"""The demo, stopped at any moment and run again with the same command, ends as if undisturbed.

``mystery run demo.toml`` runs against an in-process sandbox, which dies with the run. It is
stopped over and over — Ctrl-C (SIGINT), SIGTERM and SIGKILL, at seeded random moments: while it
imports, while it sends and polls, while it writes the report — and run again each time with the
very same command, until it finishes. Then:

- ``results/demo/timings.csv`` equals an undisturbed run's, byte for byte;
- every probe went out at its planned instant (a re-send after a kill is made at the instant
  the dead run made it, or the reply delays would shift);
- no probe was posted twice: one successful attempt and one id per probe, and the world rebuilt
  from the final store holds 66 posts, each text once, agreeing with the store to the ms;
- each Ctrl-C and SIGTERM ended with the one message and exit 130, never a traceback.

Moments are chosen by the store's progress (probes sent plus probes settled, 0 to 132), so they
spread over the whole run whatever the machine's speed; the kills of one chain land further
along each time, with the "while it imports" ones anywhere in between.
"""

from __future__ import annotations

import random
import shutil
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mystery.channels.base import Outgoing, Sent
from mystery.channels.bluesky import BlueskyChannel
from mystery.channels.mastodon import MastodonChannel
from mystery.channels.x import XChannel
from mystery.cli import app
from mystery.collect.connect import world_start
from mystery.collect.run import run_study
from mystery.collect.verify import mismatches
from mystery.store.store import Store
from mystery.study.load import load_study
from mystery.timings.export import timing_rows
from mystery.timings.schema import TimingRow
from tests.crash.crash_helpers import PYTHON, hears_signals, sigint_heard
from tests.rebuilt import rebuilt_truth

REPO = Path(__file__).resolve().parents[2]
COMMAND = [PYTHON, "-m", "mystery", "run", "demo.toml"]
INTERRUPTED = "Interrupted. The store is consistent: run the same command again to resume."
PROBES = 66
SEED = 9
STOPS = (signal.SIGINT, signal.SIGTERM, signal.SIGKILL)


@dataclass(frozen=True)
class Moment:
    stop: signal.Signals
    progress: int | None  # None: as soon as the command can hear a signal (while it imports)
    delay: float  # seconds after that, before the signal


def _moments(rng: random.Random) -> list[Moment]:
    """Per signal: once while importing, once early in the run, once late (for one of them,
    while the report is written); ordered by progress, so that each lands further along."""
    stops = list(STOPS)
    rng.shuffle(stops)
    late = [(PROBES, 2 * PROBES - 1), (PROBES, 2 * PROBES - 1), (2 * PROBES, 2 * PROBES)]
    timed = sorted(
        (rng.randint(lo, hi), stop)
        for stop, span in zip(stops, late, strict=True)
        for lo, hi in ((1, PROBES - 1), span)
    )
    moments = [Moment(stop, progress, rng.uniform(0, 0.02)) for progress, stop in timed]
    for n, stop in enumerate(stops):  # the first before anything is sent
        at = 0 if n == 0 else rng.randint(0, len(moments))
        moments.insert(at, Moment(stop, None, rng.uniform(0, 0.3)))
    return moments


def _demo(folder: Path) -> Path:
    folder.mkdir()
    for name in ("demo.toml", "demo-brands.csv"):
        shutil.copy(REPO / "studies" / name, folder / name)
    return folder


def _start(folder: Path) -> subprocess.Popen[str]:
    with sigint_heard():
        return subprocess.Popen(COMMAND, cwd=folder, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)


def _progress(db: Path) -> int:
    """Probes sent plus probes settled (0 to 132); 0 while the store is being made."""
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as con:
            row = con.execute(
                "SELECT count(message_id) + sum(state = 'settled') FROM probes"
            ).fetchone()
        con.close()
    except sqlite3.OperationalError:  # not made yet (no table), or made just now
        return 0
    return int(row[0] or 0)


def _wait_for(moment: Moment, runner: subprocess.Popen[str], db: Path) -> None:
    """Until the moment comes; a start-up moment comes at the latest after 2 s (a ``mystery``
    that never listens for SIGTERM must still be stopped, and fail the test)."""
    started = time.monotonic()
    while runner.poll() is None and time.monotonic() < started + 60:
        if moment.progress is None and (hears_signals(runner) or
                                        time.monotonic() > started + 2):
            break
        if moment.progress is not None and _progress(db) >= moment.progress:
            break
        time.sleep(0.003)
    time.sleep(moment.delay)


def _check_store(db: Path) -> None:
    """Never sent twice, at any moment: one successful attempt and one id per probe."""
    if _progress(db) == 0:
        return
    with sqlite3.connect(db) as con:
        made = con.execute(
            "SELECT probe_id, count(*) FROM send_attempts "
            "WHERE outcome IN ('sent', 'reconciled') GROUP BY probe_id HAVING count(*) > 1"
        ).fetchall()
        ids = con.execute("SELECT count(message_id), count(DISTINCT message_id) FROM probes"
                          ).fetchone()
    con.close()
    assert made == [], f"posted more than once: {made}"
    assert ids[0] == ids[1], f"two probes share a post id: {ids}"


def _rebuilt_truth(folder: Path, db: Path) -> tuple[dict[str, Any], Store]:
    """The world a run resumed from the final store would hold, and the store."""
    store = Store.open(db, create=False)
    return rebuilt_truth(store, load_study(folder / "demo.toml").study), store


@dataclass(frozen=True)
class Undisturbed:
    timings_csv: bytes
    rows: list[TimingRow]


@pytest.fixture(scope="module")
def undisturbed(tmp_path_factory: pytest.TempPathFactory) -> Undisturbed:
    """The demo run once with the command, never stopped: what every stopped run must give."""
    folder = _demo(tmp_path_factory.mktemp("undisturbed") / "demo")
    run = subprocess.run(COMMAND, cwd=folder, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    with Store.open(folder / "demo.db", create=False) as store:
        rows = timing_rows(store)
    return Undisturbed((folder / "results" / "demo" / "timings.csv").read_bytes(), rows)


def test_the_demo_stopped_at_any_moment_ends_as_an_undisturbed_run(
    tmp_path: Path, undisturbed: Undisturbed
) -> None:
    started = time.monotonic()
    expected = undisturbed.timings_csv

    folder = _demo(tmp_path / "stopped")
    db = folder / "demo.db"
    timings = folder / "results" / "demo" / "timings.csv"
    stopped: list[tuple[str, int | None, int]] = []
    for moment in _moments(random.Random(SEED)):
        runner = _start(folder)
        try:
            _wait_for(moment, runner, db)
            if runner.poll() is not None:
                _, err = runner.communicate()
                raise AssertionError(f"exited {runner.returncode} before {moment}: {err}")
            runner.send_signal(moment.stop)
            _, err = runner.communicate(timeout=60)
        finally:
            if runner.poll() is None:
                runner.kill()
                runner.communicate()
        stopped.append((moment.stop.name, moment.progress, _progress(db)))
        assert "Traceback" not in err, err
        if moment.stop is signal.SIGKILL:
            assert runner.returncode == -signal.SIGKILL, err
        elif runner.returncode == 0:  # the stop came after the run had answered: it stands
            assert "demo: finished: 66/66 probes sent" in err, (moment, err)
            assert timings.read_bytes() == expected
        else:
            assert runner.returncode == 130, (moment, err)
            assert err.strip().endswith(INTERRUPTED), (moment, err)
        assert not timings.exists() or timings.read_bytes() == expected  # whole or absent
        _check_store(db)

    final = subprocess.run(COMMAND, cwd=folder, capture_output=True, text=True, timeout=120)
    wall = time.monotonic() - started
    print(f"\nstopped {len(stopped)} times (signal, aimed at, reached): {stopped}; "
          f"{wall:.1f} s wall")
    assert final.returncode == 0, final.stderr
    assert "demo: finished: 66/66 probes sent" in final.stderr
    assert timings.read_bytes() == expected

    truth, store = _rebuilt_truth(folder, db)
    with store:
        probes = store.probes()
        assert len(probes) == PROBES
        assert all(p.sent_at == p.planned_at for p in probes)
        for channel in ("x", "mastodon", "bluesky"):
            assert mismatches(truth, store, channel=channel) == [], channel
        interrupted = store.db.execute(
            "SELECT count(*) FROM send_attempts WHERE outcome = 'interrupted'").fetchone()[0]
    posts = truth["posts"]
    assert len(posts) == PROBES and len({p["text"] for p in posts}) == PROBES
    print(f"{interrupted} send(s) cut off by a stop and made again in the rebuilt world")
    # The stops spread over the run: before any probe went out, and in the report.
    assert stopped[0][2] == 0
    assert any(reached == 2 * PROBES for _, aimed, reached in stopped if aimed is not None)


# -- a send cut off half-way, in-process: exactly where a stop can fall between platform and store


CHANNELS: dict[str, Any] = {"x": XChannel, "mastodon": MastodonChannel, "bluesky": BlueskyChannel}


@pytest.mark.parametrize(("channel", "nth", "reached"), [
    ("x", 10, True), ("mastodon", 2, False), ("bluesky", 2, True),
])
def test_a_send_cut_off_by_a_stop_is_made_again_at_its_instant(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, undisturbed: Undisturbed,
    channel: str, nth: int, reached: bool,
) -> None:
    """Ctrl-C after the ``nth`` post on ``channel`` reached the platform (or just before):
    the store says ``sending``; the rebuilt world has no such post, so the runner's lookup
    finds none and sends it again, at the very instant, and the timings are untouched."""
    cls = CHANNELS[channel]
    send: Callable[[Any, Outgoing], Sent] = cls.send
    calls: list[str] = []

    def stopped_send(self: Any, outgoing: Outgoing) -> Sent:
        calls.append(outgoing.probe_id)
        if len(calls) == nth:
            if reached:
                send(self, outgoing)
            raise KeyboardInterrupt
        return send(self, outgoing)

    folder = _demo(tmp_path / "demo")
    monkeypatch.setattr(cls, "send", stopped_send)
    with pytest.raises(KeyboardInterrupt):
        run_study(folder / "demo.toml")
    monkeypatch.setattr(cls, "send", send)
    with Store.open(folder / "demo.db", create=False) as store:
        assert [p.id for p in store.probes(state="sending")] == [calls[-1]]

    _, result = run_study(folder / "demo.toml")
    assert result.finished
    with Store.open(folder / "demo.db", create=False) as store:
        assert timing_rows(store) == undisturbed.rows
        assert [a[1] for a in store.attempts(calls[-1])] == ["interrupted", "sent"]
        assert all(p.sent_at == p.planned_at for p in store.probes())


def test_a_store_from_another_world_is_refused_not_resumed(tmp_path: Path) -> None:
    """A rebuild that does not give back the recorded ids is a different world (another
    version of the simulated brands, a store edited by hand): refused, with what to do."""
    folder = _demo(tmp_path / "demo")
    study = folder / "demo.toml"
    run_study(study, until=world_start(load_study(study).study) + timedelta(days=2))
    db = folder / "demo.db"
    with sqlite3.connect(db) as con:
        con.execute("UPDATE replies SET message_id = '1' || message_id "
                    "WHERE rowid = (SELECT min(rowid) FROM replies WHERE channel = 'x')")
    con.close()
    before = db.read_bytes()
    result = CliRunner().invoke(app, ["run", str(study), "--quiet", "--no-report"])
    assert result.exit_code == 1, result.output
    assert "cannot resume in the in-process sandbox" in result.output
    assert "is missing" in result.output and "delete the store" in result.output
    assert "Traceback" not in result.output
    assert db.read_bytes() == before
