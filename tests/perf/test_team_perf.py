"""Benchmark for team studies (run apart: ``.venv/bin/pytest tests/perf -s``): with several
researcher accounts, a poll cycle costs one mentions request per account, however many probes
are open (1,000 over 3 accounts here). Prints its figures for README.md's Performance section.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from mystery.channels.catchup import GappedPoll
from mystery.channels.x import XChannel
from mystery.clock import VirtualClock
from mystery.collect.connect import world_start
from mystery.collect.runner import Runner
from mystery.sandbox.server import SandboxServer
from mystery.sandbox.spec import WorldSpec
from mystery.store.store import Store
from mystery.study.load import load_study
from mystery.study.plan import make_plan
from tests.perf.studies import write_big_study

ACCOUNTS = ["bench_a", "bench_b", "bench_c"]


class _CountingX(XChannel):
    """The real X channel, counting its polls."""

    polls = 0

    def poll(self, cursor: str | None, now: datetime) -> GappedPoll:
        self.polls += 1
        return super().poll(cursor, now)


def test_one_read_request_per_account_per_poll(tmp_path: Path) -> None:
    """1,000 brands × 1 probe over 3 accounts, all sent within a morning, slow to answer: one
    runner per account, taking turns on one clock, each reading its own mentions."""
    path = write_big_study(tmp_path, brands=1000, probes=1)
    text = path.read_text(encoding="utf-8")
    text = text.replace('account = "bench_researcher"', f"accounts = {ACCOUNTS!r}".replace(
        "'", '"')).replace('end = 2026-03-29', 'end = 2026-03-02').replace(
        'min_gap = "1h"', 'min_gap = "1m"')
    for median in ("10m", "8h", "30m"):
        text = text.replace(f'ack_median = "{median}"', 'ack_median = "60h"')
    path.write_text(text, encoding="utf-8")
    study = load_study(path).study
    assert study.channels["x"].account_names == tuple(ACCOUNTS)
    with SandboxServer() as sandbox:
        sandbox.world.configure(WorldSpec.from_study(study, world_start(study)))
        clock: VirtualClock = sandbox.world.clock
        stores: dict[str, Store] = {}
        channels: dict[str, _CountingX] = {}
        runners: dict[str, Runner] = {}
        for account in ACCOUNTS:
            stores[account] = store = Store.open(tmp_path / "s.db")
            store.initialise(study, make_plan(study))
            store.serve({"x": account})
            channels[account] = channel = _CountingX(account, sandbox.url, sandbox=True)
            channel.open()
            runners[account] = Runner(study, store, {"x": channel}, clock,
                                      accounts={"x": account})
        sandbox.stats.reset()
        open_most = 0
        finished: set[str] = set()
        while finished != set(ACCOUNTS):
            for account, runner in runners.items():
                if runner.run(once=True).finished:
                    finished.add(account)
            open_most = max(open_most, stores[ACCOUNTS[0]].count(("sent",)))
            wakes = [e.at for r in runners.values() if (e := r.next_event()) is not None]
            if wakes:
                clock.sleep_until(min(wakes))
        mentions = sandbox.stats.snapshot().get("GET /2/users/:id/mentions", 0)
        cursors = {r[0] for r in stores[ACCOUNTS[0]].db.execute("SELECT account FROM cursors")}
        for account in ACCOUNTS:
            channels[account].close()
            stores[account].close()
    polls = {a: c.polls for a, c in channels.items()}
    total = sum(polls.values())
    print(f"\n{total} polls ({polls}), {mentions} mentions requests "
          f"({mentions / total:.3f} per poll of one account), up to {open_most} probes open "
          "at once (counted for one account)")
    assert cursors == set(ACCOUNTS)
    assert open_most > 300
    assert mentions / total < 1.05
