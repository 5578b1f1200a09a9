"""A team study survives its runners being SIGKILLed at random, over and over.

Three runners, one per researcher account (``--account``) of the study's X channel, so that
the three share every brand, serve one study in one PostgreSQL store against one standalone
sandbox (whose X knows the three accounts), each from its own process as each researcher would from
their own machine. Runners are killed at seeded random moments (while starting, sending,
polling) and restarted, at least 30 times in all; a restarted runner takes its account's lease
back at once (the dead one's process is gone) and reconciles that account's uncertain sends on
its own timeline before sending anything. After every kill no text was posted twice; at the end
every timing equals the sandbox's ground truth to the millisecond and no reply is lost.
"""

from __future__ import annotations

import random
import signal
import subprocess
import time
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

import psycopg

from mystery.clock import parse_iso
from mystery.collect.verify import mismatches
from mystery.sandbox import SandboxControl
from mystery.store.store import Store
from tests import studybuilder
from tests.crash.crash_helpers import PYTHON, STUDY, standalone_sandbox
from tests.postgres import PostgresServer

KILLS = 30
SEED = 14
ACCOUNTS = ["shopper_a", "shopper_b", "shopper_c"]
PROFILES = ["fast", "holding", "never", "patchy", "alias", "slow"]


def _study(folder: Path) -> Path:
    channels = {"x": {"accounts": ACCOUNTS, "endpoint": "sandbox", "mode": "auto",
                      "poll_every": "30m"}}
    brands: list[dict[str, Any]] = []
    # 144 brands: enough work that 30 kills land before the study ends even on a quiet
    # machine, where the runners go fastest (there 54 brands ended after 27 kills, 90 after
    # 41).
    for n, profile in enumerate(PROFILES * 24):
        handle = f"brand{n}"
        brands.append({"name": f"Brand {n}", "profile": profile, "handles": {"x": handle}})
        if profile == "alias":
            brands[-1]["aliases"] = {"x": [f"{handle}help"]}
    data = {**STUDY, "name": "team", "channels": channels}
    return studybuilder.write_study(folder, data, "team.toml", brands=brands,
                                    schedule={**STUDY["schedule"], "end": date(2026, 3, 6),
                                              "min_gap": "2h"})


def _command(study: Path, url: str, sandbox: str, account: str) -> list[str]:
    return [PYTHON, "-m", "mystery", "run", str(study), "--db", url, "--sandbox-url", sandbox,
            "--account", account, "--quiet", "--no-report"]


def _wait_for_lease(db: psycopg.Connection[Any], account: str,
                    runner: subprocess.Popen[bytes]) -> None:
    """Until ``runner`` holds its account's lease (or has ended)."""
    deadline = time.monotonic() + 60
    while runner.poll() is None and time.monotonic() < deadline:
        try:
            row = db.execute("SELECT pid FROM leases WHERE account = %s AND holder != ''",
                             (account,)).fetchone()
        except psycopg.errors.UndefinedTable:
            row = None
        if row is not None and row[0] == runner.pid:
            return
        time.sleep(0.02)


def _no_double_post(control: SandboxControl) -> None:
    texts = Counter((p.get("channel", "x"), p["text"]) for p in control.posts()["posts"])
    assert max(texts.values(), default=1) == 1, f"posted twice: {texts.most_common(1)}"


def test_three_runners_killed_at_random_end_with_the_sandboxs_ground_truth(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    study = _study(tmp_path)
    url = postgres_server.database()
    rng = random.Random(SEED)
    started = time.monotonic()
    kills = restarts = 0
    logs = {a: tmp_path / f"{a}.log" for a in ACCOUNTS}

    def start(account: str) -> subprocess.Popen[bytes]:
        with logs[account].open("a") as err:
            return subprocess.Popen(_command(study, url, sandbox, account),
                                    stdout=subprocess.DEVNULL, stderr=err)

    # Each runner moves the clock at once (--no-fair-clock): with the fair clock the three take
    # turns, two of them waiting at any moment, and few kills would land while a post is on its
    # way (2 in 30, where this test is about sends cut short; tests/e2e/test_team_pace.py holds
    # the fair clock to a dead runner).
    with standalone_sandbox("--no-fair-clock") as sandbox, SandboxControl(sandbox) as control:
        # A slow platform, so that kills land while a post or a poll is on its way.
        control.add_fault("POST /2/tweets", times=None, body="pass", delay=0.08,
                          probability=0.5, seed=1)
        control.add_fault("POST /2/tweets", times=None, body="pass", delay=0.08, when="after")
        control.add_fault("GET /2/users/:id/mentions", times=None, body="pass", delay=0.02,
                          probability=0.5, seed=2)
        running = {a: start(a) for a in ACCOUNTS}
        db = psycopg.connect(url, autocommit=True)
        held = mid_send = 0
        finished: set[str] = set()
        try:
            while kills < KILLS and len(finished) < len(running):
                account = rng.choice(sorted(set(running) - finished))
                runner = running[account]
                early = rng.random() < 0.2
                if early:  # while it starts: imports, migrations, the plan, the lease
                    time.sleep(rng.uniform(0.05, 0.7))
                else:  # while it works: once it holds its account's lease
                    _wait_for_lease(db, account, runner)
                    time.sleep(rng.uniform(0.0, 0.6))
                    held += 1
                if runner.poll() is not None:  # it ended between two kills
                    assert runner.returncode == 0, logs[account].read_text()[-3000:]
                    finished.add(account)
                    continue
                runner.send_signal(signal.SIGKILL)
                runner.wait()
                kills += 1
                _no_double_post(control)
                sending = db.execute("SELECT count(*) FROM probes WHERE state = 'sending' "
                                     "AND account = %s", (account,)).fetchone()
                mid_send += sending[0] if sending else 0
                running[account] = start(account)
                restarts += 1
            for account, runner in running.items():  # let every runner finish
                assert runner.wait(timeout=300) == 0, logs[account].read_text()[-3000:]
        finally:
            db.close()
            for runner in running.values():
                if runner.poll() is None:
                    runner.kill()
                    runner.wait()
        truth = control.posts()
    wall = time.monotonic() - started
    print(f"\n{kills} kills of 3 runners ({held} while holding a lease, {mid_send} with a send "
          f"begun and not yet recorded), {restarts} restarts; {wall:.1f} s wall")
    assert kills >= KILLS, "the study finished before enough kills: make it longer"
    assert held >= KILLS // 2

    with Store.open(url, create=False) as store:
        assert mismatches(truth, store, channel="x") == []
        probes = store.probes()
        posted = Counter(p.account for p in probes if p.sent_at is not None)
        assert sorted(posted) == ACCOUNTS  # each account asked its share of the brands
        assert all(p.state == "settled" for p in probes)
        assert len(truth["posts"]) == len(probes)  # each probe posted once
        # No reply lost: every reply to a probe within its cutoff is in the store.
        cutoff = store.cutoff()
        by_message = {p.message_id: p for p in probes}
        recorded = {(r.channel, r.message_id) for r in store.replies()}
        due = [(r.get("channel", "x"), r["id"]) for r in truth["replies"]
               if r.get("in_reply_to") in by_message
               and (sent := by_message[r["in_reply_to"]].sent_at) is not None
               and parse_iso(r["created_at"]) <= sent + cutoff]
        assert due and set(due) <= recorded, set(due) - recorded
        statuses = Counter(r["status"] for r in _rows(store))
        assert statuses["answered"] > 0 and statuses["unanswered"] > 0
        taken = store.db.execute(
            "SELECT count(*) FROM send_attempts WHERE outcome = 'reconciled'").fetchone()[0]
    logs_text = "".join(p.read_text() for p in logs.values())
    assert "Traceback" not in logs_text
    print(f"{taken} uncertain sends reconciled from their account's own timeline")


def _rows(store: Store) -> list[Any]:
    from mystery.timings.export import timing_rows

    return list(timing_rows(store))
