"""The Mastodon channel: its wire format against a scripted instance (``httpx.MockTransport``),
then the same code against the sandbox's Mastodon over loopback HTTP."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from mystery.channels.base import Outgoing, Sent
from mystery.channels.mastodon import MastodonChannel, html_to_text, idempotency_key
from mystery.channels.paging import MAX_PAGES
from mystery.channels.ratelimit import mastodon_reset
from mystery.clock import parse_iso
from mystery.errors import AuthError, RateLimited, Rejected, TransientError
from mystery.sandbox.server import SandboxServer

BASE = "https://social.example"
ME = {"id": "42", "username": "researcher", "acct": "researcher"}
PROBE = Outgoing("p0001", "help@acme.example", "Où est mon colis ? 📦")

Reply = httpx.Response | Callable[[httpx.Request], httpx.Response]


class Instance:
    """A scripted Mastodon instance: canned answers per ``METHOD /path``, every request kept."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.routes: dict[str, list[Reply]] = {
            "GET /api/v1/accounts/verify_credentials": [httpx.Response(200, json=ME)],
            "GET /api/v2/instance": [httpx.Response(200, json={"domain": "social.example"})],
            "GET /api/v2/notifications/policy": [httpx.Response(200, json={})],
        }

    def on(self, route: str, *replies: Reply) -> None:
        self.routes[route] = list(replies)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        queue = self.routes[f"{request.method} {request.url.path}"]
        reply = queue.pop(0) if len(queue) > 1 else queue[0]
        return reply(request) if callable(reply) else reply

    def sent(self, route: str) -> list[httpx.Request]:
        return [r for r in self.requests if f"{r.method} {r.url.path}" == route]


@pytest.fixture
def instance() -> Instance:
    return Instance()


@pytest.fixture
def channel(instance: Instance, monkeypatch: pytest.MonkeyPatch) -> Iterator[MastodonChannel]:
    monkeypatch.setenv("MYSTERY_MASTODON_TOKEN", "token-of-the-researcher")
    chan = MastodonChannel("researcher@social.example", BASE, visibility_lag=timedelta(0),
                           transport=httpx.MockTransport(instance))  # fmt: skip
    chan.open()
    yield chan
    chan.close()


def status(sid: str, *, acct: str = "help@acme.example", reply_to: str | None = None,
           reply_to_account: str | None = None, at: str = "2026-03-02T09:00:00.123Z",
           content: str = "<p>hello</p>") -> dict[str, Any]:  # fmt: skip
    return {
        "id": sid,
        "created_at": at,
        "in_reply_to_id": reply_to,
        "in_reply_to_account_id": reply_to_account,
        "content": content,
        "account": {"id": "7", "username": acct.split("@")[0], "acct": acct},
        "mentions": [],
    }


def mention(nid: int, **kwargs: Any) -> dict[str, Any]:
    return {"id": str(nid), "type": "mention", "status": status(str(10_000 + nid), **kwargs)}


def page(items: list[dict[str, Any]], path: str = "/api/v1/notifications") -> httpx.Response:
    headers = {}
    if items:
        newest, oldest = items[0]["id"], items[-1]["id"]
        headers["Link"] = (
            f'<{BASE}{path}?max_id={oldest}>; rel="next", <{BASE}{path}?min_id={newest}>; '
            'rel="prev"'
        )
    return httpx.Response(200, json=items, headers=headers)


# -- text -----------------------------------------------------------------------------------


def test_html_of_a_status_reads_back_as_its_text() -> None:
    content = (
        '<p><span class="h-card" translate="no"><a href="https://acme.example/@help" '
        'class="u-url mention">@<span>help</span></a></span> Fish &amp; chips?<br />Ça '
        "va</p><p>Merci</p>"
    )
    assert html_to_text(content) == "@help Fish & chips?\nÇa va\n\nMerci"


def test_the_idempotency_key_is_the_same_for_a_retry_and_differs_for_another_text() -> None:
    assert idempotency_key(PROBE) == idempotency_key(Outgoing(*PROBE.__dict__.values()))
    assert idempotency_key(PROBE).startswith("mystery-p0001-")
    other_study = Outgoing("p0001", "help@acme.example", "Another question")
    assert idempotency_key(other_study) != idempotency_key(PROBE)


# -- sending --------------------------------------------------------------------------------


def test_a_probe_is_one_full_mention_unlisted_with_an_idempotency_key(
    channel: MastodonChannel, instance: Instance
) -> None:
    instance.on("GET /api/v2/search",
                httpx.Response(200, json={"accounts": [{"id": "9", "acct": "help@acme.example"}]}))
    instance.on("POST /api/v1/statuses", httpx.Response(200, json=status("1001")))
    sent = channel.send(PROBE)
    (search,) = instance.sent("GET /api/v2/search")
    assert search.url.params["q"] == "@help@acme.example" and search.url.params["resolve"] == "true"
    (post,) = instance.sent("POST /api/v1/statuses")
    assert json.loads(post.content) == {
        "status": "@help@acme.example Où est mon colis ? 📦",
        "visibility": "unlisted",
    }
    assert post.headers["Idempotency-Key"] == idempotency_key(PROBE)
    assert post.headers["Authorization"] == "Bearer token-of-the-researcher"
    assert sent.message_id == "1001"
    assert sent.sent_at == datetime(2026, 3, 2, 9, 0, 0, 123000, tzinfo=UTC)  # created_at (ms)
    channel.send(Outgoing("p0002", "help@acme.example", "Again?"))
    assert len(instance.sent("GET /api/v2/search")) == 1  # the brand is resolved once


def test_a_brand_the_instance_cannot_resolve_is_rejected_before_anything_is_posted(
    channel: MastodonChannel, instance: Instance
) -> None:
    instance.on("GET /api/v2/search", httpx.Response(200, json={"accounts": []}))
    with pytest.raises(Rejected, match=r"cannot find @help@acme\.example"):
        channel.send(PROBE)
    assert instance.sent("POST /api/v1/statuses") == []


# -- polling --------------------------------------------------------------------------------


def test_a_poll_walks_forward_from_its_cursor_with_min_id_as_the_link_header_says(
    channel: MastodonChannel, instance: Instance
) -> None:
    full = [mention(n, reply_to="500", reply_to_account="42") for n in range(180, 100, -1)]
    rest = [mention(n, reply_to="500", reply_to_account="42") for n in (183, 182, 181)]
    instance.on("GET /api/v1/notifications", page(full), page(rest))
    now = datetime(2026, 3, 3, tzinfo=UTC)
    poll = channel.poll("100", now)
    first, second = instance.sent("GET /api/v1/notifications")
    assert first.url.params["min_id"] == "100" and second.url.params["min_id"] == "180"
    assert first.url.params.get_list("types[]") == ["mention"]
    assert first.url.params["limit"] == "80"
    assert len(poll.messages) == 83 and poll.cursor == "183" and poll.requests == 2
    assert poll.complete_through == now
    assert poll.messages[0].in_reply_to == poll.messages[0].conversation_id == "500"


def test_the_first_poll_reads_back_through_every_page_with_max_id(
    channel: MastodonChannel, instance: Instance
) -> None:
    instance.on("GET /api/v1/notifications", page([mention(9), mention(8)]), page([]))
    poll = channel.poll(None, datetime(2026, 3, 3, tzinfo=UTC))
    first, second = instance.sent("GET /api/v1/notifications")
    assert "min_id" not in first.url.params and second.url.params["max_id"] == "8"
    assert poll.cursor == "9" and len(poll.messages) == 2


def test_a_thread_lookup_midway_does_not_end_the_walk_back(
    channel: MastodonChannel, instance: Instance
) -> None:
    answer = mention(9, reply_to="900", reply_to_account="7")
    instance.on("GET /api/v1/notifications", page([answer]), page([mention(8)]), page([]))
    instance.on(f"GET /api/v1/statuses/{answer['status']['id']}/context",
                httpx.Response(200, json={"ancestors": [status("500")]}))
    poll = channel.poll(None, datetime(2026, 3, 3, tzinfo=UTC))
    assert [m.message_id for m in poll.messages] == ["10009", "10008"]
    assert len(instance.sent("GET /api/v1/notifications")) == 3


def test_an_answer_to_a_holding_message_is_traced_to_the_probe_by_the_thread_context(
    channel: MastodonChannel, instance: Instance
) -> None:
    answer = mention(5, reply_to="900", reply_to_account="7", acct="care@acme.example")
    instance.on("GET /api/v1/notifications", page([answer]))
    instance.on(f"GET /api/v1/statuses/{answer['status']['id']}/context",
                httpx.Response(200, json={"ancestors": [status("500"), status("900")]}))
    (message,) = channel.poll("1", datetime(2026, 3, 3, tzinfo=UTC)).messages
    assert message.in_reply_to == "900" and message.conversation_id == "500"
    assert message.author == "care@acme.example"
    assert message.created_at == parse_iso("2026-03-02T09:00:00.123Z")


def test_a_local_author_is_named_with_the_instance_domain(
    channel: MastodonChannel, instance: Instance
) -> None:
    instance.on("GET /api/v1/notifications",
                page([mention(5, acct="shop", reply_to="500", reply_to_account="42")]))
    (message,) = channel.poll("1", datetime(2026, 3, 3, tzinfo=UTC)).messages
    assert message.author == "shop@social.example"


def test_a_policy_that_drops_mentions_is_reported_by_the_first_poll(
    instance: Instance, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MYSTERY_MASTODON_TOKEN", "t")
    instance.on("GET /api/v2/notifications/policy",
                httpx.Response(200, json={"for_not_following": "drop"}))
    instance.on("GET /api/v1/notifications", page([]))
    chan = MastodonChannel("researcher", BASE, transport=httpx.MockTransport(instance))
    chan.open()
    try:
        (warning,) = chan.poll("1", datetime(2026, 3, 3, tzinfo=UTC)).warnings
        assert "for_not_following" in warning
        assert chan.poll("1", datetime(2026, 3, 3, tzinfo=UTC)).warnings == []
    finally:
        chan.close()


# -- errors ---------------------------------------------------------------------------------


def test_a_rate_limit_reset_is_read_as_iso_8601() -> None:
    headers = {"X-RateLimit-Reset": "2026-03-02T09:15:00.250000Z"}
    assert mastodon_reset(headers) == datetime(2026, 3, 2, 9, 15, 0, 250000, tzinfo=UTC)
    assert mastodon_reset({"x-ratelimit-reset": "soon"}) is None
    assert mastodon_reset({}) is None


def test_a_429_says_until_when_to_wait(channel: MastodonChannel, instance: Instance) -> None:
    instance.on("GET /api/v1/notifications", httpx.Response(
        429, json={"error": "Too many requests"},
        headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "2026-03-02T09:15:00.000000Z"},
    ))  # fmt: skip
    with pytest.raises(RateLimited) as caught:
        channel.poll("1", datetime(2026, 3, 2, 9, tzinfo=UTC))
    assert caught.value.reset_at == datetime(2026, 3, 2, 9, 15, tzinfo=UTC)


def _boom(kind: type[Exception]) -> Callable[[httpx.Request], httpx.Response]:
    def raise_it(request: httpx.Request) -> httpx.Response:
        raise kind("boom", request=request)  # type: ignore[call-arg]

    return raise_it


@pytest.mark.parametrize(
    ("reply", "error", "words"),
    [
        (httpx.Response(401, json={"error": "The access token is invalid"}), AuthError,
         "MYSTERY_MASTODON_TOKEN"),
        (httpx.Response(403, json={"error": "This action is not allowed"}), AuthError,
         "MYSTERY_MASTODON_TOKEN"),
        (httpx.Response(422, json={"error": "Validation failed: Text can't be blank"}), Rejected,
         "Text can't be blank"),
        (httpx.Response(503, text="<html>down</html>"), TransientError, "503"),
        (httpx.Response(200, text='{"id": "1", "crea'), TransientError, "malformed"),
        (httpx.Response(200, json=["not", "a status"]), TransientError, "malformed"),
        (_boom(httpx.ConnectError), TransientError, "ConnectError"),
        (_boom(httpx.ReadTimeout), TransientError, "ReadTimeout"),
    ],
)  # fmt: skip
def test_a_failed_post_maps_onto_the_channel_contract(
    channel: MastodonChannel, instance: Instance, reply: Reply, error: type[Exception],
    words: str,
) -> None:  # fmt: skip
    instance.on("GET /api/v2/search",
                httpx.Response(200, json={"accounts": [{"acct": "help@acme.example"}]}))
    instance.on("POST /api/v1/statuses", reply)
    with pytest.raises(error, match=words):
        channel.send(PROBE)


def test_without_a_token_the_error_says_what_to_set() -> None:
    chan = MastodonChannel("researcher", BASE)
    with pytest.raises(AuthError, match="MYSTERY_MASTODON_TOKEN"):
        chan.open()


def test_a_token_of_another_account_is_refused(
    instance: Instance, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MYSTERY_MASTODON_TOKEN", "t")
    chan = MastodonChannel("someone_else", BASE, transport=httpx.MockTransport(instance))
    try:
        with pytest.raises(AuthError, match=r"belongs to @researcher@social\.example"):
            chan.open()
    finally:
        chan.close()


# -- against the sandbox --------------------------------------------------------------------

WORLD = {
    "seed": 3,
    "start": "2026-03-02T09:00:00.000Z",
    "timezone": "Europe/London",
    "researcher": {"mastodon": "mystery_res"},
    "brands": [{
        "name": "Acme",
        "handles": {"mastodon": "help@acme.example"},
        "aliases": {"mastodon": ["care@acme.example"]},
        "profile": {"ack_median": 600, "holding_share": 1.0, "resolve_after": 1800},
    }],
}  # fmt: skip


@pytest.fixture
def sandboxed() -> Iterator[tuple[SandboxServer, MastodonChannel]]:
    with SandboxServer() as server:
        assert httpx.put(f"{server.url}/_sandbox/world", json=WORLD).status_code == 201
        chan = MastodonChannel("mystery_res", server.url, visibility_lag=timedelta(0),
                               sandbox=True)  # fmt: skip
        chan.open()
        yield server, chan
        chan.close()


def test_in_the_sandbox_a_resent_probe_is_the_same_status_and_is_found_again(
    sandboxed: tuple[SandboxServer, MastodonChannel],
) -> None:
    server, chan = sandboxed
    first = chan.send(PROBE)
    assert chan.send(PROBE) == first  # Idempotency-Key: no second status
    (post,) = server.ground_truth()["posts"]
    assert post["id"] == first.message_id and post["channel"] == "mastodon"
    assert first.sent_at == parse_iso(post["created_at"])
    start = parse_iso(WORLD["start"])  # type: ignore[arg-type]
    assert chan.find_sent(PROBE, start - timedelta(minutes=1)) == first
    assert chan.find_sent(Outgoing("p0002", "help@acme.example", "Other"), start) is None


def test_in_the_sandbox_replies_arrive_with_their_exact_times_and_threads(
    sandboxed: tuple[SandboxServer, MastodonChannel],
) -> None:
    server, chan = sandboxed
    sent = chan.send(PROBE)
    fate = server.ground_truth()["posts"][0]["fate"]
    resolved = parse_iso(fate["resolution_at"])
    assert chan.poll(None, server.world.now()).messages == []  # decided, not yet visible
    server.world.advance_to(resolved)
    poll = chan.poll(None, server.world.now())
    holding, answer = sorted(poll.messages, key=lambda m: m.created_at)
    assert [holding.created_at, answer.created_at] == [parse_iso(fate["ack_at"]), resolved]
    assert holding.in_reply_to == sent.message_id
    assert answer.in_reply_to == holding.message_id  # the brand answered in its own thread
    assert answer.conversation_id == sent.message_id  # ... traced back to the probe
    assert "DM" in holding.text and holding.text.startswith("@mystery_res ")
    assert chan.poll(poll.cursor, server.world.now()).messages == []


def test_in_the_sandbox_a_post_named_by_mystery_sent_is_fetched_only_if_ours(
    sandboxed: tuple[SandboxServer, MastodonChannel],
) -> None:
    server, chan = sandboxed
    sent = chan.send(PROBE)
    shown = f"@help {PROBE.text}"  # the server shows a remote mention by its local part
    assert chan.fetch_own(sent.message_id) == Sent(sent.message_id, sent.sent_at, shown)
    server.world.advance_to(parse_iso(server.ground_truth()["posts"][0]["fate"]["ack_at"]))
    reply = chan.poll(None, server.world.now()).messages[0]
    assert chan.fetch_own(reply.message_id) is None  # the brand's, not ours
    assert chan.fetch_own("999999999999") is None  # no such status


# -- paging that never ends -----------------------------------------------------------------


@pytest.mark.parametrize("cursor", ["100", None], ids=["forward", "first poll, backward"])
def test_a_cursor_the_instance_repeats_is_refused_not_followed_forever(
    channel: MastodonChannel, instance: Instance, cursor: str | None
) -> None:
    full = [mention(n, reply_to="500", reply_to_account="42") for n in range(180, 100, -1)]
    instance.on("GET /api/v1/notifications", page(full))  # the same page, whatever is asked
    with pytest.raises(TransientError, match="Mastodon repeated a pagination cursor on GET "
                       "notifications"):
        channel.poll(cursor, datetime(2026, 3, 3, tzinfo=UTC))
    assert len(instance.sent("GET /api/v1/notifications")) == 2


def test_a_walk_back_that_never_ends_stops_at_the_page_cap(
    channel: MastodonChannel, instance: Instance
) -> None:
    def older(request: httpx.Request) -> httpx.Response:
        top = int(request.url.params.get("max_id", "1000000"))
        return page([mention(top - 1), mention(top - 2)])

    instance.on("GET /api/v1/notifications", older)
    with pytest.raises(TransientError, match=f"past {MAX_PAGES} pages"):
        channel.poll(None, datetime(2026, 3, 3, tzinfo=UTC))
    assert len(instance.sent("GET /api/v1/notifications")) == MAX_PAGES
