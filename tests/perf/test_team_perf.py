"""Benchmark for team studies (run apart: ``.venv/bin/pytest tests/perf -s``): with several
researcher accounts, a poll cycle costs one mentions request per account, however many probes
are open (1,000 over 3 accounts here), with one runner serving the three accounts. Prints its
figures for README.md's Performance section.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest

from mystery.channels.catchup import GappedPoll
from mystery.channels.x import XChannel
from mystery.collect.run import run_study
from mystery.sandbox.server import SandboxServer
from mystery.store.store import Store
from mystery.study.load import load_study
from tests.perf.studies import write_big_study

ACCOUNTS = ["bench_a", "bench_b", "bench_c"]


def test_one_read_request_per_account_per_poll(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """1,000 brands × 1 probe over 3 accounts, all sent within a morning, slow to answer: one
    runner for the three accounts, each reading its own mentions."""
    path = write_big_study(tmp_path, brands=1000, probes=1)
    text = path.read_text(encoding="utf-8")
    text = text.replace('account = "bench_researcher"', f"accounts = {ACCOUNTS!r}".replace(
        "'", '"')).replace('end = 2026-03-29', 'end = 2026-03-02').replace(
        'min_gap = "1h"', 'min_gap = "1m"')
    for median in ("10m", "8h", "30m"):
        text = text.replace(f'ack_median = "{median}"', 'ack_median = "60h"')
    path.write_text(text, encoding="utf-8")
    assert load_study(path).study.channels["x"].account_names == tuple(ACCOUNTS)
    polls: Counter[str] = Counter()
    poll = XChannel.poll

    def counted(self: XChannel, cursor: str | None, now: datetime) -> GappedPoll:
        polls[self.account] += 1
        return poll(self, cursor, now)

    monkeypatch.setattr(XChannel, "poll", counted)
    with SandboxServer() as sandbox:
        _, result = run_study(path, sandbox_url=sandbox.url)
        mentions = sandbox.stats.snapshot().get("GET /2/users/:id/mentions", 0)
    assert result.finished
    with Store.open(path.with_suffix(".db"), create=False) as store:
        cursors = {r[0] for r in store.db.execute("SELECT account FROM cursors")}
        # The most probes open at once, for one account: sends and settlements in order.
        events = sorted(store.db.execute(
            "SELECT sent_at, 1 FROM probes WHERE account = ? UNION ALL "
            "SELECT settled_at, -1 FROM probes WHERE account = ?", (ACCOUNTS[0],) * 2))
    open_most = now_open = 0
    for _, change in events:
        now_open += change
        open_most = max(open_most, now_open)
    total = sum(polls.values())
    print(f"\n{total} polls ({dict(polls)}), {mentions} mentions requests "
          f"({mentions / total:.3f} per poll of one account), up to {open_most} probes open "
          "at once (counted for one account); one runner for the 3 accounts")
    assert cursors == set(ACCOUNTS) == set(polls)
    assert open_most > 300
    assert mentions / total < 1.05
