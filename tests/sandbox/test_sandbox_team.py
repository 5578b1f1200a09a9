"""Several researcher accounts on the sandbox's Mastodon and Bluesky (a team study's
``accounts = [...]``), driven by the real channels over loopback HTTP.

As on the real platforms, each account logs in as itself (Mastodon: the token's account, read
by ``verify_credentials``; Bluesky: ``createSession`` for its handle), posts as itself, and reads
only its own notifications; a brand answers the account that asked it. A runner serving one
account must never see another's replies, or it would pin them on the wrong probes.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest

from mystery.channels.base import Channel, Outgoing
from mystery.channels.bluesky import BlueskyChannel
from mystery.channels.mastodon import MastodonChannel
from mystery.clock import parse_iso
from mystery.errors import AuthError
from mystery.sandbox.server import SandboxServer

TEAM = {
    "mastodon": ["shopper_a@sandbox.example", "shopper_b@sandbox.example"],
    "bluesky": ["shopper-a.bsky.social", "shopper-b.bsky.social"],
}
BRAND = {"mastodon": "help@acme.example", "bluesky": "acme.example"}
WORLD = {
    "seed": 4,
    "start": "2026-03-02T09:00:00.000Z",
    "researcher": {c: accounts[0] for c, accounts in TEAM.items()},
    "team": {c: accounts[1:] for c, accounts in TEAM.items()},
    "brands": [{
        "name": "Acme",
        "handles": BRAND,
        "profile": {"ack_median": 600, "holding_share": 1.0, "resolve_after": 1800},
    }],
}  # fmt: skip


def _channel(name: str, account: str, url: str) -> Channel:
    if name == "mastodon":
        return MastodonChannel(account, url, visibility_lag=timedelta(0), sandbox=True)
    return BlueskyChannel(account, url, visibility_lag=timedelta(0), sandbox=True)


@pytest.fixture
def server() -> Iterator[SandboxServer]:
    with SandboxServer() as sandbox:
        answer = httpx.put(f"{sandbox.url}/_sandbox/world", json=WORLD)
        assert answer.status_code == 201, answer.text
        yield sandbox


@pytest.mark.parametrize("name", ["mastodon", "bluesky"])
def test_each_account_posts_as_itself_and_hears_only_its_own_replies(
    server: SandboxServer, name: str
) -> None:
    channels = [_channel(name, account, server.url) for account in TEAM[name]]
    for channel in channels:
        channel.open()  # each checks that the sandbox knows it as the study's account
    try:
        sent = [
            channel.send(Outgoing(f"p000{i}", BRAND[name], f"Question {i} from {account}"))
            for i, (channel, account) in enumerate(zip(channels, TEAM[name], strict=True))
        ]
        truth = server.ground_truth()
        authors = {p["id"]: p["author"] for p in truth["posts"]}
        assert [authors[s.message_id] for s in sent] == TEAM[name]
        last = max(parse_iso(p["fate"]["resolution_at"]) for p in truth["posts"])
        server.world.advance_to(last)
        replies = {r["id"]: r for r in server.ground_truth()["replies"]}
        assert len(replies) == 4  # a holding message and an answer to each account
        for channel, account, probe in zip(channels, TEAM[name], sent, strict=True):
            poll = channel.poll(None, server.world.now())
            assert len(poll.messages) == 2
            for message in poll.messages:
                assert message.conversation_id == probe.message_id  # its own probe's thread
                assert message.created_at == parse_iso(replies[message.message_id]["created_at"])
            holding = min(poll.messages, key=lambda m: m.created_at)
            assert holding.text.startswith(f"@{account.split('@')[0]} ")  # asked, answered
    finally:
        for channel in channels:
            channel.close()


def test_an_account_the_sandbox_does_not_know_is_refused_at_open(server: SandboxServer) -> None:
    mastodon = _channel("mastodon", "stranger@sandbox.example", server.url)
    with pytest.raises(AuthError, match="belongs to @shopper_a"):
        mastodon.open()  # the token names no researcher account: it acts as the first one
    mastodon.close()
    bluesky = _channel("bluesky", "stranger.bsky.social", server.url)
    with pytest.raises(AuthError, match=r"refused the login of stranger\.bsky\.social"):
        bluesky.open()
    bluesky.close()


def _login(url: str, handle: str) -> httpx.Response:
    return httpx.post(f"{url}/xrpc/com.atproto.server.createSession",
                      json={"identifier": handle, "password": "app-password"})


def test_a_bluesky_session_writes_only_to_its_own_repo(server: SandboxServer) -> None:
    a, b = (_login(server.url, h).json() for h in TEAM["bluesky"])
    assert a["did"] != b["did"] and b["handle"] == TEAM["bluesky"][1]
    record = {"$type": "app.bsky.feed.post", "text": "hello", "createdAt": WORLD["start"]}
    answer = httpx.post(f"{server.url}/xrpc/com.atproto.repo.createRecord",
                        headers={"Authorization": f"Bearer {a['accessJwt']}"},
                        json={"repo": b["did"], "collection": "app.bsky.feed.post",
                              "record": record})  # fmt: skip
    assert answer.status_code == 401 and answer.json()["error"] == "AuthRequiredError"
    refreshed = httpx.post(f"{server.url}/xrpc/com.atproto.server.refreshSession",
                           headers={"Authorization": f"Bearer {b['refreshJwt']}"}).json()
    assert refreshed["did"] == b["did"]  # a refreshed session is still the same account


def test_the_login_cap_is_each_bluesky_accounts_own(server: SandboxServer) -> None:
    first, second = TEAM["bluesky"]
    for _ in range(30):
        assert _login(server.url, first).status_code == 200
    assert _login(server.url, first).status_code == 429
    assert _login(server.url, second).status_code == 200


def test_mastodon_idempotency_keys_are_each_accounts_own(server: SandboxServer) -> None:
    def post(account: str) -> str:
        answer = httpx.post(
            f"{server.url}/api/v1/statuses",
            headers={"Authorization": f"Bearer sandbox:{account}", "Idempotency-Key": "k1"},
            json={"status": f"@{BRAND['mastodon']} where is my parcel?"},
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["account"]["acct"] == account.split("@")[0]
        return str(answer.json()["id"])

    a, b = TEAM["mastodon"]
    first = post(a)
    assert post(a) == first  # a retry by the same account: the same status
    assert post(b) != first  # the same key from another account: its own status
