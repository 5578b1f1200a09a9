"""Two runners of a team study at once on one standalone sandbox, one much slower than the other:
both send every probe at its planned instant in virtual time.

Each runner jumps the sandbox's clock to its own next event; without the barrier over the
announced runners (``mystery.sandbox.runners``) the fast one would carry the clock ahead while
the slow one was still polling, and the slow one's probes would go out late: still timed
exactly (the platform's time), but no longer when the plan said. Each runner keeps its own
SQLite store here (``--db``), so the two truly run at once without a PostgreSQL server.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from mystery.channels.x import XChannel
from mystery.clock import parse_iso
from mystery.collect.connect import world_start
from mystery.collect.run import run_study
from mystery.sandbox import SandboxControl, SandboxServer, WorldSpec
from mystery.store.store import Store
from mystery.study.load import load_study
from tests.studybuilder import study_data, write_study

ACCOUNTS = ["shopper_a", "shopper_b"]
SLOW = "shopper_b"
STUDY = study_data(
    name="paces",
    channels={"x": {"accounts": ACCOUNTS, "endpoint": "sandbox", "poll_every": "10m"}},
    questions=[{"id": "delivery", "text": "Hi {brand}, do you deliver on Saturdays?"},
               {"id": "hours", "text": "Hello {brand}, what time are you open until today?"},
               {"id": "returns", "text": "Hi {brand}, can I return an item without a receipt?"},
               {"id": "stock", "text": "Hello {brand}, will the blue kettle be back in stock?"}],
    schedule={"start": date(2026, 3, 2), "end": date(2026, 3, 3), "probes_per_brand": 4,
              "min_gap": "2h", "seed": 8},
    brands=[{"name": f"Brand{i}", "handles": {"x": f"Brand{i}"}, "profile": "slow"}
            for i in range(4)],
    sandbox={"seed": 3, "profiles": {"slow": {"ack_median": "3h", "resolve_after": "2h"}}},
)


def _run_both(path: Path, url: str) -> None:
    """Both accounts' runners at once, each in its own thread with its own store, released
    together: the barrier waits only for runners that have announced themselves, so the test
    holds the clock (as a gate runner of its own) until both have."""
    failures: list[BaseException] = []
    study = load_study(path).study
    world = WorldSpec.from_study(study, world_start(study)).to_body()
    assert httpx.put(f"{url}/_sandbox/world", json=world).status_code in (200, 201)
    gate = httpx.post(f"{url}/_sandbox/runners", json={"runner": "gate", "name": "gate"})
    assert gate.status_code == 201, gate.text

    def runner(account: str) -> None:
        try:
            run_study(path, db=path.parent / f"{account}.db", sandbox_url=url, account=account)
        except BaseException as exc:  # reported by the test, not lost in the thread
            failures.append(exc)

    threads = [threading.Thread(target=runner, args=(a,)) for a in ACCOUNTS]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 60
    while {r["name"] for r in httpx.get(f"{url}/_sandbox/runners").json()["runners"]} < {
            "gate", *(f"x:{a}" for a in ACCOUNTS)}:
        assert time.monotonic() < deadline and all(t.is_alive() for t in threads), failures
        time.sleep(0.01)
    httpx.request("DELETE", f"{url}/_sandbox/runners", json={"runner": "gate"})
    for thread in threads:
        thread.join(120)
    assert not any(t.is_alive() for t in threads), "a runner did not finish"
    assert not failures, failures


def _all_on_time(path: Path, control: SandboxControl) -> None:
    """Every probe of each account sent at its planned instant, at the platform's time."""
    truth = {p["id"]: p for p in control.posts()["posts"]}
    sent = 0
    for account in ACCOUNTS:
        with Store.open(path.parent / f"{account}.db", create=False) as store:
            mine = [p for p in store.probes() if p.account == account]
        assert mine and {p.state for p in mine} == {"settled"}
        for probe in mine:
            assert probe.sent_at == probe.planned_at, (account, probe.id)  # on time
            post = truth[probe.message_id or ""]
            assert post["author"] == account
            assert parse_iso(post["created_at"]) == probe.sent_at  # the platform's time
        sent += len(mine)
    assert sent == len(truth) == 16


def test_a_slow_runner_and_a_fast_one_both_send_on_time(
    tmp_path: Path, sandbox: SandboxServer, control: SandboxControl,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    poll: Callable[..., Any] = XChannel.poll

    def paced(channel: XChannel, cursor: str | None, now: datetime) -> Any:
        if channel.account == SLOW:
            time.sleep(0.03)  # a slow machine, a slow store: each poll takes longer
        return poll(channel, cursor, now)

    monkeypatch.setattr(XChannel, "poll", paced)
    path = write_study(tmp_path, STUDY, "paces.toml")
    _run_both(path, sandbox.url)
    _all_on_time(path, control)
    assert sandbox.app.context.runners.view()["runners"] == []  # both left when they finished


def test_a_runner_that_died_holds_the_clock_only_until_the_timeout(tmp_path: Path) -> None:
    """A runner announced itself and died (it never asks for a time, never leaves): the others
    wait for it for --runner-timeout seconds of wall time, then go on without it."""
    path = write_study(tmp_path, STUDY, "paces.toml")
    with SandboxServer(runner_timeout=1.0) as sandbox, SandboxControl(sandbox.url) as control:
        study = load_study(path).study
        control.put_world(WorldSpec.from_study(study, world_start(study)))
        ghost = httpx.post(f"{sandbox.url}/_sandbox/runners",
                           json={"runner": "ghost", "name": "x:shopper_c"})
        assert ghost.status_code == 201
        started = time.monotonic()
        _run_both(path, sandbox.url)
        assert time.monotonic() - started >= 1.0  # the dead one was waited for, that long
        _all_on_time(path, control)
        assert sandbox.app.context.runners.view()["dropped"] == ["x:shopper_c"]
