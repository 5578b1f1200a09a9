"""A team study on Mastodon and on Bluesky in the sandbox: two researcher accounts, one runner
per account, taking turns on one standalone sandbox (one world, one clock) and one store.

As on X (``test_team_accounts.py``): each probe goes out from the account its plan names, each
account reads only its own notifications (one request per poll, its own cursor), every reply
belongs to a probe of the account it answered, and every time equals the sandbox's ground
truth to the millisecond.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from mystery.channels.base import Poll
from mystery.channels.bluesky import BlueskyChannel
from mystery.channels.mastodon import MastodonChannel
from mystery.cli import app
from mystery.clock import parse_iso
from mystery.collect.run import run_study
from mystery.collect.verify import mismatches
from mystery.sandbox import SandboxControl, SandboxServer
from mystery.store.store import Store
from mystery.study.load import load_study
from mystery.timings.export import timing_rows
from tests.rebuilt import rebuilt_truth
from tests.studybuilder import study_data, write_study

CUTOFF = timedelta(days=2)
ACCOUNTS = {
    "mastodon": ["shopper_a@sandbox.example", "shopper_b@sandbox.example"],
    "bluesky": ["shopper-a.bsky.social", "shopper-b.bsky.social"],
}
HANDLES = {
    "mastodon": {"Acme": "help@acme.example", "Globex": "care@globex.example",
                 "Initech": "hello@initech.example"},
    "bluesky": {"Acme": "acme.example", "Globex": "globex.bsky.social",
                "Initech": "initech.example"},
}  # fmt: skip
NOTIFICATIONS: dict[str, tuple[type[MastodonChannel | BlueskyChannel], str, str]] = {
    "mastodon": (MastodonChannel, "_request", "/api/v1/notifications"),
    "bluesky": (BlueskyChannel, "_send", "/xrpc/app.bsky.notification.listNotifications"),
}
"""Each channel's one method that makes an HTTP request, and the notifications route."""


def team_study(channel: str) -> dict[str, Any]:
    """3 brands × 2 probes on ``channel`` from two accounts: two answer (one via a holding
    message), one never does."""
    return study_data(
        name="team-fedi", cutoff="2d",
        channels={channel: {"accounts": ACCOUNTS[channel], "endpoint": "sandbox",
                            "poll_every": "20m"}},
        questions=[{"id": "delivery", "text": "Hi {brand}, do you deliver on Saturdays?"},
                   {"id": "hours", "text": "Hello {brand}, what time are you open until today?"}],
        schedule={"start": date(2026, 3, 2), "end": date(2026, 3, 4), "probes_per_brand": 2,
                  "min_gap": "4h", "seed": 5},
        brands=[{"name": name, "handles": {channel: handle},
                 "profile": "silent" if name == "Initech" else "quick"}
                for name, handle in HANDLES[channel].items()],
        sandbox={"seed": 2, "profiles": {
            "quick": {"ack_median": "30m", "resolve_after": "1h", "holding_share": 0.5},
            "silent": {"answer_rate": 0.0}}},
    )  # fmt: skip


class Watch:
    """What each account's channel asked and heard: per poll, the notification requests it
    made that were answered (a Bluesky request refused for an expired session is made again
    after the refresh, and counted once), and the threads of the messages it heard."""

    def __init__(self, channel: str, monkeypatch: pytest.MonkeyPatch) -> None:
        self.requests: defaultdict[str, list[int]] = defaultdict(list)
        self.sent: Counter[str] = Counter()  # every notifications request, refused ones too
        self.heard: defaultdict[str, list[str | None]] = defaultdict(list)
        kind, method, route = NOTIFICATIONS[channel]
        poll: Callable[..., Poll] = kind.poll
        call: Callable[..., httpx.Response] = getattr(kind, method)

        def watched_poll(chan: Any, cursor: str | None, now: datetime) -> Poll:
            self.requests[chan.account].append(0)
            result = poll(chan, cursor, now)
            self.heard[chan.account] += [m.conversation_id for m in result.messages]
            return result

        def watched_call(chan: Any, verb: str, where: str, *args: Any,
                         **kwargs: Any) -> httpx.Response:  # fmt: skip
            response = call(chan, verb, where, *args, **kwargs)
            if where.endswith(route):
                self.sent[chan.account] += 1
                if response.status_code == 200:
                    self.requests[chan.account][-1] += 1
            return response

        monkeypatch.setattr(kind, "poll", watched_poll)
        monkeypatch.setattr(kind, method, watched_call)


def _take_turns(path: Path, url: str, control: SandboxControl, accounts: list[str]) -> None:
    """Each account's runner in turn, up to the same instant, then the clock moves on."""
    finished: set[str] = set()
    turns = 0
    while finished != set(accounts):
        turns += 1
        assert turns < 200, "the team study does not finish"
        step = control.now() + timedelta(hours=2)
        for account in accounts:
            _, result = run_study(path, sandbox_url=url, account=account, until=step)
            if result.finished:
                finished.add(account)
        if control.now() < step:
            control.advance_to(step)


def _within(at: str | None, sent: datetime) -> float | None:
    if at is None or parse_iso(at) - sent > CUTOFF:
        return None
    return (parse_iso(at) - sent).total_seconds()


@pytest.mark.parametrize("channel", ["mastodon", "bluesky"])
def test_two_accounts_two_runners_one_sandbox(
    tmp_path: Path, sandbox: SandboxServer, control: SandboxControl,
    monkeypatch: pytest.MonkeyPatch, channel: str,
) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)
    accounts = ACCOUNTS[channel]
    watch = Watch(channel, monkeypatch)
    path = write_study(tmp_path, team_study(channel), "team.toml")
    _take_turns(path, sandbox.url, control, accounts)

    truth = control.posts()
    posts = {p["id"]: p for p in truth["posts"]}
    with Store.open(path.with_suffix(".db"), create=False) as store:
        probes = store.probes()
        replies = store.replies()
        rows = {(r["brand"], r["sent_at"]): r for r in timing_rows(store)}
        cursors = {r[0] for r in store.db.execute("SELECT account FROM cursors")}
    assert {p.state for p in probes} == {"settled"}
    assert len(posts) == len(probes) == 6  # nothing sent twice
    assert Counter(p.account for p in probes) == {a: 3 for a in accounts}
    assert all({p.account for p in probes if p.brand == b} == set(accounts)
               for b in HANDLES[channel])  # each brand heard from both accounts

    # Every probe went out from its own account, at the platform's time; its timings are the
    # sandbox's own, unanswered ones censored at the cutoff.
    for probe in probes:
        post = posts[probe.message_id or ""]
        assert post["author"] == probe.account
        assert probe.sent_at == parse_iso(post["created_at"])
        row = rows[(probe.brand, probe.sent_at)]
        ack = _within(post["fate"]["ack_at"], probe.sent_at)
        assert row["ack_seconds"] == ack
        assert row["resolution_seconds"] == _within(post["fate"]["resolution_at"], probe.sent_at)
        assert row["status"] == ("answered" if ack is not None else "unanswered")
    assert Counter(r["status"] for r in rows.values()) == {"answered": 4, "unanswered": 2}

    # Every reply was recorded once, at its own time, on a probe of the account it answered.
    asked = {r["id"]: r for r in truth["replies"]}
    assert {r.message_id for r in replies} == set(asked)
    by_id = {p.id: p for p in probes}
    answered = {r["conversation_id"]: r for r in truth["replies"]}
    for reply in replies:
        probe = by_id[reply.probe_id]
        assert reply.created_at == parse_iso(asked[reply.message_id]["created_at"])
        assert asked[reply.message_id]["conversation_id"] == probe.message_id
    assert set(answered) <= {p.message_id for p in probes}

    # Each account heard only replies to its own probes, kept its own cursor, and read its
    # own notifications in one request a poll, whatever the other account had: on Mastodon
    # only the first poll that finds anything takes two (it walks back to the end); on
    # Bluesky a poll whose page holds nothing older than its cursor asks once more, to be sure
    # it read down to it (the channel's rule, with one account as with several).
    own = {a: {p.message_id for p in probes if p.account == a} for a in accounts}
    for account in accounts:
        assert watch.heard[account] and set(watch.heard[account]) <= own[account]
        per_poll = Counter(watch.requests[account])
        assert per_poll[1] > 50 and set(per_poll) <= {1, 2}
        if channel == "mastodon":
            assert per_poll[2] <= 1
    route = {"mastodon": "GET /api/v1/notifications",
             "bluesky": "GET /xrpc/app.bsky.notification.listNotifications"}[channel]
    assert control.stats()[route] == sum(watch.sent.values())
    assert cursors == set(accounts)

    # What a researcher sees from the command line: each account's standing.
    result = CliRunner().invoke(app, ["run", str(path), "--sandbox-url", sandbox.url,
                                      "--account", accounts[1], "--quiet", "--no-report"])
    assert result.exit_code == 0, result.output
    for account in accounts:
        assert f"team-fedi: {channel} as {account}: 3/3 probes sent" in result.output


def test_mastodon_accounts_on_two_instances_are_refused_before_anything_is_written(
    tmp_path: Path,
) -> None:
    data = team_study("mastodon")
    data["channels"]["mastodon"]["accounts"] = ["a@one.example", "b@two.example"]
    path = write_study(tmp_path, data, "two.toml")
    result = CliRunner().invoke(app, ["run", str(path), "--account", "a@one.example",
                                      "--sandbox-url", "http://127.0.0.1:9", "--quiet"])
    assert result.exit_code == 1
    assert "the sandbox is one Mastodon instance" in result.output
    assert "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["two.toml"]


@pytest.mark.parametrize("channel", ["mastodon", "bluesky"])
def test_one_runner_serves_both_accounts_in_the_in_process_sandbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, channel: str
) -> None:
    """``mystery run STUDY`` without ``--account``: one runner, both accounts, the in-process
    sandbox. Run again, the finished study rebuilds its world from the store, each probe
    posted again by its own account (an id or a reply time that differs is refused)."""
    monkeypatch.chdir(tmp_path)
    accounts = ACCOUNTS[channel]
    path = write_study(tmp_path, team_study(channel), "team.toml")
    for _ in range(2):  # the second run resumes a finished study: the rebuilt world must match
        result = CliRunner().invoke(app, ["run", str(path), "--quiet", "--no-report"])
        assert result.exit_code == 0, result.output
        assert "team-fedi: finished: 6/6 probes sent" in result.output
    with Store.open(path.with_suffix(".db"), create=False) as store:
        probes = store.probes()
        truth = rebuilt_truth(store, load_study(path).study)
        assert mismatches(truth, store, channel=channel) == []
        by_id = {p.id: p for p in probes}
        authors = {p["id"]: p["author"] for p in truth["posts"]}
        assert all(authors[p.message_id or ""] == p.account for p in probes)
        threads = {r["id"]: r["conversation_id"] for r in truth["replies"]}
        replies = store.replies()
        assert replies
        for reply in replies:
            assert threads[reply.message_id] == by_id[reply.probe_id].message_id
    assert Counter(p.account for p in probes) == {a: 3 for a in accounts}
