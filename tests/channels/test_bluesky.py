"""The Bluesky channel: its wire format against a scripted PDS (``httpx.MockTransport``), then
the same code against the sandbox's XRPC over loopback HTTP."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from mystery.channels.atproto import mention_facet, probe_rkey, tid
from mystery.channels.base import Outgoing
from mystery.channels.bluesky import BlueskyChannel
from mystery.channels.paging import MAX_PAGES
from mystery.channels.ratelimit import atproto_reset, retry_after
from mystery.clock import parse_iso
from mystery.errors import AuthError, RateLimited, Rejected, TransientError
from mystery.sandbox.server import SandboxServer

ENTRY = "https://entryway.example"
PDS = "https://pds.example"
ME = "did:plc:researcher0000000000000"
BRAND = "did:plc:brand000000000000000000"
PROBE = Outgoing("p0001", "acme.example", "Où est mon colis ? 📦")
NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)

Reply = httpx.Response | Callable[[httpx.Request], httpx.Response]


def session(n: int = 1) -> dict[str, Any]:
    return {
        "accessJwt": f"access-{n}",
        "refreshJwt": f"refresh-{n}",
        "handle": "researcher.bsky.social",
        "did": ME,
        "didDoc": {"service": [{"id": "#atproto_pds", "serviceEndpoint": PDS}]},
    }


class Pds:
    """A scripted entryway + PDS: canned answers per ``METHOD nsid``, every request kept."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.routes: dict[str, list[Reply]] = {
            "POST com.atproto.server.createSession": [httpx.Response(200, json=session())],
            "GET com.atproto.identity.resolveHandle": [httpx.Response(200, json={"did": BRAND})],
        }

    def on(self, route: str, *replies: Reply) -> None:
        self.routes[route] = list(replies)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        queue = self.routes[f"{request.method} {request.url.path.removeprefix('/xrpc/')}"]
        reply = queue.pop(0) if len(queue) > 1 else queue[0]
        return reply(request) if callable(reply) else reply

    def sent(self, route: str) -> list[httpx.Request]:
        return [r for r in self.requests
                if f"{r.method} {r.url.path.removeprefix('/xrpc/')}" == route]  # fmt: skip


@pytest.fixture
def pds() -> Pds:
    return Pds()


@pytest.fixture
def channel(pds: Pds, monkeypatch: pytest.MonkeyPatch) -> Iterator[BlueskyChannel]:
    monkeypatch.setenv("MYSTERY_BLUESKY_APP_PASSWORD", "app-pass-word")
    chan = BlueskyChannel("researcher.bsky.social", ENTRY, visibility_lag=timedelta(0),
                          transport=httpx.MockTransport(pds), wall_clock=lambda: NOW)  # fmt: skip
    chan.open()
    yield chan
    chan.close()


def error(status: int, name: str, message: str = "",
          headers: dict[str, str] | None = None) -> httpx.Response:  # fmt: skip
    return httpx.Response(status, json={"error": name, "message": message}, headers=headers)


def notification(n: int, reason: str = "reply", *, parent: str = "at://me/p/1",
                 root: str = "at://me/p/1", at: str = "2026-03-02T10:00:00.000Z",
                 claimed: str | None = None) -> dict[str, Any]:  # fmt: skip
    return {
        "uri": f"at://{BRAND}/app.bsky.feed.post/{n}",
        "cid": "bafy",
        "author": {"did": BRAND, "handle": "Acme.Example"},
        "reason": reason,
        "record": {"text": f"reply {n}", "createdAt": claimed or at,
                   "reply": {"parent": {"uri": parent}, "root": {"uri": root}}},
        "indexedAt": at,
    }  # fmt: skip


# -- the post ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "start"),
    [
        ("@acme.example hi", 0),
        ("Café ☕ @acme.example 🎉", len("Café ☕ ".encode())),  # 10 bytes, 7 characters
        ("👩‍👩‍👧 Zürich! @ACME.example.", len("👩‍👩‍👧 Zürich! ".encode())),
    ],
)
def test_a_mention_facet_counts_utf8_bytes(text: str, start: int) -> None:
    facet = mention_facet(text, "acme.example", BRAND)
    index = facet["index"]
    assert index == {"byteStart": start, "byteEnd": start + len("@acme.example")}
    assert text.encode()[index["byteStart"] : index["byteEnd"]].decode().lower() == "@acme.example"
    assert facet["features"] == [{"$type": "app.bsky.richtext.facet#mention", "did": BRAND}]


def test_a_mention_facet_never_covers_a_longer_handle() -> None:
    with pytest.raises(ValueError, match="does not mention"):
        mention_facet("@acme.example.co.uk hello", "acme.example", BRAND)
    with pytest.raises(ValueError):
        mention_facet("mail help@acme.example", "acme.example", BRAND)


def test_a_probe_record_key_is_a_tid_the_same_on_every_attempt() -> None:
    key = probe_rkey(ME, "p0001", PROBE.compose())
    assert key == probe_rkey(ME, "p0001", PROBE.compose())
    assert len(key) == 13 and key[0] in "234567abcdefghij"
    assert set(key) <= set("234567abcdefghijklmnopqrstuvwxyz")
    assert key != probe_rkey(ME, "p0001", "another study's question")
    assert key != probe_rkey(ME, "p0002", PROBE.compose())
    assert tid(1) < tid(2) < tid(1 << 40)  # TIDs sort as their numbers do


def test_a_probe_is_posted_with_its_facet_rkey_and_indexed_time(
    channel: BlueskyChannel, pds: Pds
) -> None:
    uri = f"at://{ME}/app.bsky.feed.post/{probe_rkey(ME, 'p0001', PROBE.compose())}"
    pds.on("POST com.atproto.repo.createRecord", httpx.Response(200, json={"uri": uri}))
    pds.on("GET app.bsky.feed.getPosts", httpx.Response(200, json={"posts": [
        {"uri": uri, "indexedAt": "2026-03-02T09:00:01.234Z", "record": {}}]}))  # fmt: skip
    sent = channel.send(PROBE)
    (create,) = pds.sent("POST com.atproto.repo.createRecord")
    assert str(create.url).startswith(PDS)  # after login, the account's own PDS
    assert create.headers["Authorization"] == "Bearer access-1"
    body = json.loads(create.content)
    assert body["repo"] == ME and body["collection"] == "app.bsky.feed.post"
    assert body["rkey"] == probe_rkey(ME, "p0001", PROBE.compose())
    record = body["record"]
    assert record["text"] == "@acme.example Où est mon colis ? 📦"
    assert record["createdAt"] == "2026-03-02T09:00:00.000Z"  # claimed, from our clock
    assert record["facets"][0]["index"] == {"byteStart": 0, "byteEnd": 13}
    assert sent.message_id == uri
    assert sent.sent_at == parse_iso("2026-03-02T09:00:01.234Z")  # indexedAt, not createdAt
    (resolve,) = pds.sent("GET com.atproto.identity.resolveHandle")
    assert resolve.url.params["handle"] == "acme.example"


def test_a_rejected_create_that_collides_with_our_own_post_is_that_post(
    channel: BlueskyChannel, pds: Pds
) -> None:
    uri = f"at://{ME}/app.bsky.feed.post/x"
    pds.on("POST com.atproto.repo.createRecord", error(400, "InvalidRequest", "already exists"))
    pds.on("GET com.atproto.repo.getRecord", httpx.Response(200, json={
        "uri": uri, "value": {"text": PROBE.compose()}}))  # fmt: skip
    pds.on("GET app.bsky.feed.getPosts", httpx.Response(200, json={"posts": [
        {"uri": uri, "indexedAt": "2026-03-02T09:00:00.500Z"}]}))  # fmt: skip
    assert channel.send(PROBE).message_id == uri
    (get,) = pds.sent("GET com.atproto.repo.getRecord")
    assert get.url.params["rkey"] == probe_rkey(ME, "p0001", PROBE.compose())


def test_a_post_not_yet_indexed_is_uncertain_not_lost(channel: BlueskyChannel, pds: Pds) -> None:
    pds.on("POST com.atproto.repo.createRecord", httpx.Response(200, json={"uri": "at://x"}))
    pds.on("GET app.bsky.feed.getPosts", httpx.Response(200, json={"posts": []}))
    with pytest.raises(TransientError, match="not indexed it yet"):
        channel.send(PROBE)


# -- the session ----------------------------------------------------------------------------


def test_an_expired_token_is_refreshed_and_the_call_made_once_more(
    channel: BlueskyChannel, pds: Pds
) -> None:
    pds.on("GET app.bsky.notification.listNotifications",
           error(400, "ExpiredToken", "Token has expired"),
           httpx.Response(200, json={"notifications": []}))  # fmt: skip
    pds.on("POST com.atproto.server.refreshSession", httpx.Response(200, json=session(2)))
    channel.poll(None, NOW)
    (refresh,) = pds.sent("POST com.atproto.server.refreshSession")
    assert refresh.headers["Authorization"] == "Bearer refresh-1"
    polls = pds.sent("GET app.bsky.notification.listNotifications")
    assert [p.headers["Authorization"] for p in polls] == ["Bearer access-1", "Bearer access-2"]
    assert len(pds.sent("POST com.atproto.server.createSession")) == 1  # never a second login


def test_session_tokens_never_reach_a_log(channel: BlueskyChannel, pds: Pds,
                                         caplog: pytest.LogCaptureFixture) -> None:
    pds.on("GET app.bsky.notification.listNotifications",
           error(400, "ExpiredToken"), httpx.Response(200, json={"notifications": []}))
    pds.on("POST com.atproto.server.refreshSession", httpx.Response(200, json=session(22)))
    channel.poll(None, NOW)  # logged in with session 1, refreshed to session 22
    with caplog.at_level(logging.DEBUG, logger="httpx"):
        for token in ("access-1", "refresh-1", "access-22", "refresh-22"):
            logging.getLogger("httpx").debug("Authorization: Bearer %s", token)
    assert "access-" not in caplog.text and "refresh-" not in caplog.text
    assert caplog.text.count("Bearer ***") == 4


def test_a_dead_refresh_token_logs_in_once_more(channel: BlueskyChannel, pds: Pds) -> None:
    pds.on("GET app.bsky.notification.listNotifications",
           error(400, "ExpiredToken"), httpx.Response(200, json={"notifications": []}))
    pds.on("POST com.atproto.server.refreshSession", error(400, "ExpiredToken"))
    pds.on("POST com.atproto.server.createSession", httpx.Response(200, json=session(3)))
    channel.poll(None, NOW)
    assert len(pds.sent("POST com.atproto.server.createSession")) == 2


def test_a_wrong_app_password_says_what_to_fix(pds: Pds, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MYSTERY_BLUESKY_APP_PASSWORD", "wrong")
    pds.on("POST com.atproto.server.createSession",
           error(401, "AuthenticationRequired", "Invalid identifier or password"))
    chan = BlueskyChannel("researcher.bsky.social", ENTRY, transport=httpx.MockTransport(pds))
    try:
        with pytest.raises(AuthError, match=r"Invalid identifier.*MYSTERY_BLUESKY_APP_PASSWORD"):
            chan.open()
    finally:
        chan.close()


def test_without_an_app_password_the_error_says_what_to_set() -> None:
    with pytest.raises(AuthError, match="MYSTERY_BLUESKY_APP_PASSWORD"):
        BlueskyChannel("researcher.bsky.social").open()


# -- polling --------------------------------------------------------------------------------


def test_a_poll_reads_back_to_the_newest_time_it_had_seen(channel: BlueskyChannel,
                                                          pds: Pds) -> None:  # fmt: skip
    newer = [notification(3, at="2026-03-02T12:00:00.000Z"),
             notification(2, "mention", parent="at://acme/p/9", at="2026-03-02T11:00:00.000Z")]
    pds.on("GET app.bsky.notification.listNotifications",
           httpx.Response(200, json={"notifications": newer, "cursor": "c1"}),
           httpx.Response(200, json={"notifications": [
               notification(1, at="2026-03-02T10:00:00.000Z"),
               notification(0, at="2026-03-02T09:00:00.000Z")], "cursor": "c2"}))  # fmt: skip
    poll = channel.poll("2026-03-02T10:00:00.000Z", NOW)
    first, second = pds.sent("GET app.bsky.notification.listNotifications")
    assert first.url.params.get_list("reasons") == ["mention", "reply"]
    assert "cursor" not in first.url.params and second.url.params["cursor"] == "c1"
    # Newest first; it stops at the first item older than the mark (the one at the mark is
    # read again: recording is idempotent on the message id).
    assert [m.message_id.rsplit("/", 1)[1] for m in poll.messages] == ["3", "2", "1"]
    assert poll.cursor == "2026-03-02T12:00:00.000Z" and poll.requests == 2
    mention = poll.messages[1]
    assert mention.in_reply_to == "at://acme/p/9" and mention.conversation_id == "at://me/p/1"
    assert mention.author == "acme.example"
    assert mention.created_at == parse_iso("2026-03-02T11:00:00.000Z")


def test_a_claimed_created_at_far_from_indexed_at_is_reported_not_used(
    channel: BlueskyChannel, pds: Pds
) -> None:
    odd = notification(1, at="2026-03-02T10:00:00.000Z", claimed="2026-03-01T08:00:00.000Z")
    pds.on("GET app.bsky.notification.listNotifications",
           httpx.Response(200, json={"notifications": [odd]}))
    poll = channel.poll(None, NOW)
    assert poll.messages[0].created_at == parse_iso("2026-03-02T10:00:00.000Z")
    (warning,) = poll.warnings
    assert "claims createdAt 2026-03-01T08:00:00.000Z" in warning
    assert channel.poll(None, NOW).warnings == []  # once per reply


# -- errors ---------------------------------------------------------------------------------


def test_rate_limit_headers_give_the_reset() -> None:
    assert atproto_reset({"RateLimit-Reset": "1772442900"}, NOW) == datetime(
        2026, 3, 2, 9, 15, tzinfo=UTC
    )
    assert atproto_reset({"Retry-After": "90"}, NOW) == NOW + timedelta(seconds=90)
    assert retry_after("Mon, 02 Mar 2026 09:05:00 GMT", NOW) == NOW + timedelta(minutes=5)
    assert atproto_reset({}, NOW) is None


def _boom(kind: type[Exception]) -> Callable[[httpx.Request], httpx.Response]:
    def raise_it(request: httpx.Request) -> httpx.Response:
        raise kind("boom", request=request)  # type: ignore[call-arg]

    return raise_it


@pytest.mark.parametrize(
    ("reply", "error_type", "words"),
    [
        (error(429, "RateLimitExceeded", "", {"RateLimit-Reset": "1772442900"}), RateLimited,
         "rate limit"),
        (error(401, "AuthMissing"), AuthError, "MYSTERY_BLUESKY_APP_PASSWORD"),
        (error(400, "AccountTakedown"), AuthError, "AccountTakedown"),
        (error(400, "InvalidRequest", "Invalid app.bsky.feed.post record"), Rejected, "record"),
        (error(502, "UpstreamFailure"), TransientError, "UpstreamFailure"),
        (httpx.Response(200, text="{"), TransientError, "malformed"),
        (_boom(httpx.ConnectError), TransientError, "ConnectError"),
    ],
)
def test_a_failed_post_maps_onto_the_channel_contract(
    channel: BlueskyChannel, pds: Pds, reply: Reply, error_type: type[Exception], words: str
) -> None:
    pds.on("POST com.atproto.repo.createRecord", reply)
    pds.on("GET com.atproto.repo.getRecord", error(400, "RecordNotFound"))
    with pytest.raises(error_type, match=words) as caught:
        channel.send(PROBE)
    if isinstance(caught.value, RateLimited):
        assert caught.value.reset_at == datetime(2026, 3, 2, 9, 15, tzinfo=UTC)


def test_an_unknown_handle_is_rejected(channel: BlueskyChannel, pds: Pds) -> None:
    pds.on("GET com.atproto.identity.resolveHandle",
           error(400, "InvalidRequest", "Unable to resolve handle"))
    with pytest.raises(Rejected, match=r"cannot resolve the Bluesky handle acme\.example"):
        channel.send(PROBE)
    assert pds.sent("POST com.atproto.repo.createRecord") == []


# -- against the sandbox --------------------------------------------------------------------

WORLD = {
    "seed": 3,
    "start": "2026-03-02T09:00:00.000Z",
    "timezone": "Europe/London",
    "researcher": {"bluesky": "mystery-res.bsky.social"},
    "brands": [{
        "name": "Acme",
        "handles": {"bluesky": "acme.example"},
        "profile": {"ack_median": 600, "holding_share": 1.0, "resolve_after": 1800},
    }],
}  # fmt: skip


@pytest.fixture
def sandboxed() -> Iterator[tuple[SandboxServer, BlueskyChannel]]:
    with SandboxServer() as server:
        assert httpx.put(f"{server.url}/_sandbox/world", json=WORLD).status_code == 201
        chan = BlueskyChannel("mystery-res.bsky.social", server.url,
                              visibility_lag=timedelta(0), sandbox=True)  # fmt: skip
        chan.open()
        yield server, chan
        chan.close()


def test_in_the_sandbox_a_resent_probe_collides_and_is_found_at_its_key(
    sandboxed: tuple[SandboxServer, BlueskyChannel],
) -> None:
    server, chan = sandboxed
    first = chan.send(PROBE)
    with pytest.raises(TransientError):  # the PDS refuses a second record at the key
        chan.send(PROBE)
    (post,) = server.ground_truth()["posts"]
    assert post["id"] == first.message_id and post["channel"] == "bluesky"
    assert first.sent_at == parse_iso(post["created_at"])
    assert chan.find_sent(PROBE, NOW) == first


def test_in_the_sandbox_a_bad_facet_offset_is_refused(
    sandboxed: tuple[SandboxServer, BlueskyChannel],
) -> None:
    server, chan = sandboxed
    session = httpx.post(f"{server.url}/xrpc/com.atproto.server.createSession",
                         json={"identifier": "mystery-res.bsky.social", "password": "x"}).json()
    did = chan._resolve("acme.example")
    text = "Café @acme.example hi"
    by_characters = {"index": {"byteStart": 5, "byteEnd": 18},  # characters, not bytes
                     "features": [{"$type": "app.bsky.richtext.facet#mention", "did": did}]}
    answer = httpx.post(
        f"{server.url}/xrpc/com.atproto.repo.createRecord",
        headers={"Authorization": f"Bearer {session['accessJwt']}"},
        json={"repo": session["did"], "collection": "app.bsky.feed.post", "record": {
            "$type": "app.bsky.feed.post", "text": text, "createdAt": "2026-03-02T09:00:00Z",
            "facets": [by_characters]}},
    )  # fmt: skip
    assert answer.status_code == 400 and "UTF-8 bytes" in answer.json()["message"]


def test_in_the_sandbox_replies_arrive_as_mention_then_reply_at_their_indexed_times(
    sandboxed: tuple[SandboxServer, BlueskyChannel],
) -> None:
    server, chan = sandboxed
    sent = chan.send(PROBE)
    fate = server.ground_truth()["posts"][0]["fate"]
    server.world.advance_to(parse_iso(fate["resolution_at"]))
    poll = chan.poll(None, server.world.now())
    answer, holding = poll.messages  # newest first
    assert holding.created_at == parse_iso(fate["ack_at"])
    assert answer.created_at == parse_iso(fate["resolution_at"])
    assert holding.in_reply_to == sent.message_id == holding.conversation_id
    assert answer.in_reply_to == holding.message_id and answer.conversation_id == sent.message_id
    reasons = [n["reason"] for n in httpx.get(
        f"{server.url}/xrpc/app.bsky.notification.listNotifications",
        headers={"Authorization": f"Bearer {chan._access}"},
    ).json()["notifications"]]  # fmt: skip
    assert reasons == ["reply", "mention"]  # the holding message mentions us; the answer not
    assert chan.poll(poll.cursor, server.world.now()).messages == [answer]  # the mark, again


def test_in_the_sandbox_a_post_named_by_mystery_sent_is_fetched_only_if_ours(
    sandboxed: tuple[SandboxServer, BlueskyChannel],
) -> None:
    _, chan = sandboxed
    sent = chan.send(PROBE)
    rkey = sent.message_id.rsplit("/", 1)[-1]
    assert chan.fetch_own(rkey) == sent  # a bsky.app URL gives the record key
    assert chan.fetch_own(sent.message_id) == sent
    assert chan.fetch_own("3zzzzzzzzzzzz") is None  # no such post of ours


# -- paging that never ends -----------------------------------------------------------------


def test_a_cursor_the_server_repeats_is_refused_not_followed_forever(
    channel: BlueskyChannel, pds: Pds
) -> None:
    pds.on("GET app.bsky.notification.listNotifications",
           httpx.Response(200, json={"notifications": [notification(1)], "cursor": "c1"}))
    with pytest.raises(TransientError, match="Bluesky repeated a pagination cursor on "
                       "listNotifications"):
        channel.poll(None, NOW)
    assert len(pds.sent("GET app.bsky.notification.listNotifications")) == 2


def test_a_walk_that_never_ends_stops_at_the_page_cap(channel: BlueskyChannel, pds: Pds) -> None:
    def another(request: httpx.Request) -> httpx.Response:
        n = int(request.url.params.get("cursor", "c0")[1:]) + 1
        return httpx.Response(200, json={"notifications": [notification(n)], "cursor": f"c{n}"})

    pds.on("GET app.bsky.notification.listNotifications", another)
    with pytest.raises(TransientError, match=f"past {MAX_PAGES} pages"):
        channel.poll(None, NOW)
    assert len(pds.sent("GET app.bsky.notification.listNotifications")) == MAX_PAGES
