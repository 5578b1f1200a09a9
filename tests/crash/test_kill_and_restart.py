"""A study survives being SIGKILLed at random moments, over and over.

The runner (``mystery run`` as its own process) is killed at seeded random moments — while
starting, sending, polling, recording — and restarted each time until the study is finished.
After every kill the store must already keep the promises (never two posts of a probe; every
reply the cursor has passed is in the store), and at the end the timings must equal those of an
undisturbed run of the same study in a fresh sandbox, and the sandbox's ground truth, exactly:
same sent times to the millisecond (each probe posted at its planned instant), same
acknowledgements and resolutions.

The sandbox answers posts and polls slowly (injected delays), so that kills often land while a
post is on its way or a poll is being read; the figures are printed (``-s``).
"""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from mystery.collect.verify import mismatches
from mystery.sandbox import SandboxControl
from mystery.store.store import Store
from mystery.timings.export import timing_rows
from tests.crash.crash_helpers import run_command, standalone_sandbox, write_study

KILLS = 32
SEED = 2026


@dataclass
class Figures:
    kills: int = 0
    during_start: int = 0
    mid_send_posted: int = 0  # the platform had the post; the store still said 'sending'
    mid_send_unposted: int = 0  # 'sending' in the store; nothing on the platform (yet)


def _check_after_kill(db: Path, control: SandboxControl, figures: Figures) -> None:
    """The promises hold at the moment of the kill, not only at the end."""
    truth = control.posts()
    texts = Counter(p["text"] for p in truth["posts"])
    assert max(texts.values(), default=1) == 1, f"posted twice: {texts.most_common(1)}"
    if not db.exists():
        return
    with sqlite3.connect(db) as con:
        sending = [r[0] for r in con.execute("SELECT text FROM probes WHERE state = 'sending'")]
        cursor = con.execute("SELECT value FROM cursors WHERE channel = 'x'").fetchone()
        recorded = {r[0] for r in con.execute("SELECT message_id FROM replies")}
        probe_ids = {r[0] for r in con.execute(
            "SELECT message_id FROM probes WHERE message_id IS NOT NULL")}
    con.close()
    posted = [p["text"] for p in truth["posts"]]
    for text in sending:
        if any(p.endswith(text) for p in posted):
            figures.mid_send_posted += 1
        else:
            figures.mid_send_unposted += 1
    if cursor and cursor[0]:
        # Rule 4: a reply to a known probe at or below the cursor is already committed.
        lost = [r["id"] for r in truth["replies"]
                if int(r["id"]) <= int(cursor[0]) and r["in_reply_to"] in probe_ids
                and r["id"] not in recorded]
        assert not lost, f"replies behind the cursor but not in the store: {lost}"


def _kill_until_finished(study: Path, url: str, db: Path, figures: Figures) -> str:
    rng = random.Random(SEED)
    log = db.with_suffix(".log")
    with SandboxControl(url) as control:
        opened = 0
        while True:
            with log.open("a") as err:
                runner = subprocess.Popen(run_command(study, url, db), stdout=subprocess.DEVNULL,
                                          stderr=err)
            if figures.kills >= KILLS:
                try:
                    assert runner.wait(timeout=120) == 0, log.read_text()[-3000:]
                finally:
                    runner.kill()
                    runner.wait()
                return log.read_text()
            early = rng.random() < 0.2
            if early:
                time.sleep(rng.uniform(0.05, 0.7))  # while it starts: imports, lock, migrate
            else:
                while control.stats().get("GET /2/users/me", 0) <= opened:  # it is connected
                    if runner.poll() is not None:
                        break
                    time.sleep(0.01)
                time.sleep(rng.uniform(0.0, 0.2))
            opened = control.stats().get("GET /2/users/me", 0)
            if runner.poll() is not None:
                assert runner.returncode == 0, log.read_text()[-3000:]
                return log.read_text()  # finished between two kills
            runner.send_signal(signal.SIGKILL)
            runner.wait()
            figures.kills += 1
            figures.during_start += early
            _check_after_kill(db, control, figures)


def test_a_study_killed_at_random_moments_ends_as_an_undisturbed_one(tmp_path: Path) -> None:
    study = write_study(tmp_path)
    figures = Figures()
    started = time.monotonic()
    with standalone_sandbox() as disturbed, standalone_sandbox() as calm:
        reference = subprocess.Popen(run_command(study, calm, tmp_path / "calm.db"),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            with SandboxControl(disturbed) as control:
                # A slow platform: posts and polls take long enough to be killed half-way.
                control.add_fault("POST /2/tweets", times=None, body="pass", delay=0.08,
                                  probability=0.5, seed=1)  # before the post is made
                control.add_fault("POST /2/tweets", times=None, body="pass", delay=0.08,
                                  when="after")  # after it is made, before we hear of it
                control.add_fault("GET /2/users/:id/mentions", times=None, body="pass",
                                  delay=0.02, probability=0.5, seed=2)
            output = _kill_until_finished(study, disturbed, tmp_path / "killed.db", figures)
            _, reference_err = reference.communicate(timeout=120)
        finally:
            if reference.poll() is None:
                reference.kill()
                reference.communicate()
        assert reference.returncode == 0, reference_err
        with SandboxControl(disturbed) as control:
            disturbed_truth = control.posts()
        with SandboxControl(calm) as control:
            calm_truth = control.posts()
    wall = time.monotonic() - started
    print(f"\n{figures.kills} kills ({figures.during_start} while starting), "
          f"{figures.mid_send_posted} with a post made but not yet recorded, "
          f"{figures.mid_send_unposted} with a send begun but not yet made; {wall:.1f} s wall")
    assert "finished" in output
    assert figures.kills >= 30
    assert figures.mid_send_posted + figures.mid_send_unposted >= 3

    with Store.open(tmp_path / "killed.db", create=False) as killed, \
            Store.open(tmp_path / "calm.db", create=False) as calm_store:
        assert mismatches(disturbed_truth, killed) == []
        assert mismatches(calm_truth, calm_store) == []
        # Identical to the undisturbed run, row for row, to the millisecond.
        assert timing_rows(killed) == timing_rows(calm_store)
        # Every probe went out at its planned instant: the clock never ran past a due send.
        assert all(p.sent_at == p.planned_at for p in killed.probes())
        assert len(timing_rows(killed)) == 24
        statuses = Counter(r["status"] for r in timing_rows(killed))
        assert statuses["answered"] > 0 and statuses["unanswered"] > 0
        reconciled = killed.db.execute(
            "SELECT count(*) FROM send_attempts WHERE outcome = 'reconciled'").fetchone()[0]
    assert len(disturbed_truth["posts"]) == 24
    if figures.mid_send_posted:
        assert reconciled > 0  # found on our timeline, not posted again
