"""Brands that answer by direct message, and ``GET /2/dm_events`` as tweepy reads it: a public
"we've sent you a DM", then the answer as a DM at its planned time, visible only from then on,
newest first, in pages, for 30 days."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests
import tweepy

from mystery.clock import parse_iso, snowflake_time
from mystery.coding.rules import auto_code
from mystery.sandbox import SandboxServer
from mystery.sandbox.brands import ANSWER_TEXTS, DM_ACK_TEXTS, decide_fate
from mystery.sandbox.spec import BrandSpec
from mystery.study.model import Profile
from tests.sandbox.sandbox_helpers import RESEARCHER, brand, make_client, world_body

FIELDS = ["id", "text", "event_type", "created_at", "sender_id", "dm_conversation_id"]


@pytest.fixture
def dms(sandbox: SandboxServer) -> tuple[SandboxServer, tweepy.Client]:
    """Acme (with an alias) answers every probe by DM an hour after its public note; Globex
    answers in public."""
    acme = brand("Acme", "Acme", ["AcmeHelp"], dm_share=1, resolve_after=3600, alias_share=0.5)
    body = world_body(acme, brand("Globex", "Globex"))
    assert requests.put(f"{sandbox.url}/_sandbox/world", json=body, timeout=10).status_code == 201
    return sandbox, make_client(sandbox.url)


def _inbox(client: tweepy.Client, page: int = 100) -> list[tweepy.DirectMessageEvent]:
    """Every visible DM event, following ``next_token`` as the X channel does."""
    events: list[tweepy.DirectMessageEvent] = []
    token: str | None = None
    while True:
        response = client.get_direct_message_events(
            dm_event_fields=FIELDS, event_types=["MessageCreate"], expansions=["sender_id"],
            max_results=page, pagination_token=token,
        )
        events += response.data or []
        token = response.meta.get("next_token")
        if token is None:
            return events
        assert len(token) >= 16  # the spec's PaginationToken32


def _dm_truth(sandbox: SandboxServer) -> list[dict[str, Any]]:
    return [r for r in sandbox.ground_truth()["replies"] if r["direct"]]


def test_a_dm_brand_acknowledges_in_public_and_resolves_by_dm(
    dms: tuple[SandboxServer, tweepy.Client],
) -> None:
    sandbox, client = dms
    for i in range(12):
        client.create_tweet(text=f"@Acme where is my order {i}?")
    sandbox.world.advance_by(timedelta(days=3))
    truth = sandbox.ground_truth()
    replies = {r["id"]: r for r in truth["replies"]}
    for post in truth["posts"]:
        ack, answer = (replies[i] for i in post["fate"]["reply_ids"])
        # In public: a holding note saying a DM was sent, read as an acknowledgement.
        assert not ack["direct"] and ack["in_reply_to"] == post["id"]
        assert ack["text"].removeprefix(f"@{RESEARCHER} ") in DM_ACK_TEXTS
        assert auto_code(ack["text"]) == "acknowledgement"
        # In private: the answer, from the account that said it would write, at the resolution.
        assert answer["direct"] and answer["probe"] == post["id"]
        assert answer["in_reply_to"] is None and answer["kind"] == "answer"
        assert answer["text"] in ANSWER_TEXTS and auto_code(answer["text"]) == "resolution"
        assert answer["author"] == ack["author"]
        assert answer["created_at"] == post["fate"]["resolution_at"]
        assert post["fate"]["ack_at"] == ack["created_at"]
        low, high = sorted((answer["author_id"], post["author_id"]), key=int)
        assert answer["conversation_id"] == f"{low}-{high}"
    assert {r["author"] for r in _dm_truth(sandbox)} == {"Acme", "AcmeHelp"}


def test_the_inbox_is_newest_first_and_pages_cover_it_once(
    dms: tuple[SandboxServer, tweepy.Client],
) -> None:
    sandbox, client = dms
    for i in range(7):
        client.create_tweet(text=f"@Acme question {i}")
        client.create_tweet(text=f"@Globex question {i}")  # public answers: not in the inbox
    sandbox.world.advance_by(timedelta(days=3))
    truth = _dm_truth(sandbox)
    assert len(truth) == 7
    events = _inbox(client, page=3)
    assert [e.id for e in events] == sorted((int(r["id"]) for r in truth), reverse=True)
    by_id = {int(r["id"]): r for r in truth}
    for event in events:
        expected = by_id[event.id]
        assert event.event_type == "MessageCreate" and event.text == expected["text"]
        assert event.sender_id == int(expected["author_id"])
        assert event.dm_conversation_id == expected["conversation_id"]
        # created_at in whole seconds; the id's snowflake carries the millisecond.
        assert snowflake_time(event.id) == parse_iso(expected["created_at"])
        assert event.created_at == snowflake_time(event.id).replace(microsecond=0)
    senders = client.get_direct_message_events(expansions=["sender_id"]).includes["users"]
    assert {u.username for u in senders} == {r["author"] for r in truth}


def test_a_dm_is_invisible_until_its_time_and_for_30_days_after(
    dms: tuple[SandboxServer, tweepy.Client],
) -> None:
    sandbox, client = dms
    client.create_tweet(text="@Acme is this visible?")
    answer_at = parse_iso(sandbox.ground_truth()["posts"][0]["fate"]["resolution_at"])
    sandbox.world.advance_to(answer_at - timedelta(milliseconds=1))
    assert _inbox(client) == [] and _dm_truth(sandbox) == []
    sandbox.world.advance_to(answer_at)
    assert len(_inbox(client)) == 1 and len(_dm_truth(sandbox)) == 1
    sandbox.world.advance_to(answer_at + timedelta(days=30))
    assert len(_inbox(client)) == 1
    sandbox.world.advance_to(answer_at + timedelta(days=30, milliseconds=1))
    assert _inbox(client) == []


def test_the_dm_route_carries_rate_limit_headers_and_filters_event_types(
    dms: tuple[SandboxServer, tweepy.Client],
) -> None:
    sandbox, client = dms
    client.create_tweet(text="@Acme headers?")
    sandbox.world.advance_by(timedelta(days=1))
    url = f"{sandbox.url}/2/dm_events"
    auth = {"Authorization": "Bearer token"}
    first = requests.get(url, headers=auth, timeout=10)
    assert first.status_code == 200 and first.json()["meta"]["result_count"] == 1
    assert first.headers["x-rate-limit-limit"] == "15"  # X's documented per-user limit
    assert first.headers["x-rate-limit-remaining"] == "14"
    assert int(first.headers["x-rate-limit-reset"]) > sandbox.world.now().timestamp()
    joins = requests.get(url, headers=auth, params={"event_types": "ParticipantsJoin"}, timeout=10)
    assert joins.json() == {"meta": {"result_count": 0}}
    assert requests.get(url, timeout=10).status_code == 401
    assert sandbox.stats.snapshot()["GET /2/dm_events"] == 3


def test_moving_answers_to_dms_changes_no_time_and_other_channels_answer_in_public() -> None:
    def fate(dm_share: float, dms: bool, text: str) -> Any:
        acme = BrandSpec(name="Acme", handles={"x": "Acme"}, profile=Profile(
            holding_share=0.3, resolve_after=timedelta(hours=2), dm_share=dm_share))
        monday_9 = datetime(2026, 3, 2, 9, tzinfo=UTC)
        return decide_fate(5, acme, text, monday_9, ZoneInfo("Europe/London"), dms=dms)

    texts = [f"@Acme q{i}" for i in range(300)]
    for text in texts:
        public, private = fate(0, True, text), fate(1, True, text)
        assert private.ack_at == public.ack_at  # the same draws, whatever dm_share says
        if len(public.replies) == 2:
            assert private.resolution_at == public.resolution_at
        assert [r.direct for r in private.replies] == [False, True]
        assert fate(1, False, text) == public  # no DMs on this channel: dm_share is moot
    half = [fate(0.5, True, t).replies[-1].direct for t in texts]
    assert 100 < sum(half) < 200
