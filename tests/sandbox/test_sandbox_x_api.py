"""The X API subset, driven by unmodified tweepy over loopback, checked against ground truth."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import requests
import tweepy

from mystery.clock import parse_iso, snowflake_time
from mystery.sandbox import SandboxControl, SandboxServer
from tests.sandbox.sandbox_helpers import RESEARCHER, all_mentions

AUTH = {"Authorization": "Bearer token"}


def test_users_me_and_lookups(x: tweepy.Client) -> None:
    me = x.get_me().data
    assert me.username == RESEARCHER
    acme = x.get_user(username="acme", user_auth=True).data  # case-insensitive, like X
    assert acme.username == "Acme"
    both = x.get_users(usernames=["AcmeHelp", "Nobody"], user_auth=True)
    assert [u.username for u in both.data] == ["AcmeHelp"]
    assert both.errors[0]["detail"] == "Could not find user with username: [Nobody]."
    missing = x.get_user(username="Nobody", user_auth=True)
    assert missing.data is None and missing.errors[0]["resource_type"] == "user"


def test_post_answers_201_with_location_and_rate_limit_headers(world: SandboxServer) -> None:
    response = requests.post(
        f"{world.url}/2/tweets", json={"text": "@Acme where is my parcel?"}, headers=AUTH, timeout=5
    )
    assert response.status_code == 201
    data = response.json()["data"]
    assert data["edit_history_tweet_ids"] == [data["id"]]
    assert response.headers["location"].endswith(f"/2/tweets/{data['id']}")
    assert response.headers["x-rate-limit-limit"] == "100"
    assert response.headers["x-rate-limit-remaining"] == "99"
    reset = int(response.headers["x-rate-limit-reset"])
    now = world.world.now().timestamp()
    assert now < reset <= now + 900  # a virtual-clock instant, not wall time
    assert snowflake_time(data["id"]) == world.world.now()


def test_identical_text_is_refused_as_duplicate_content(x: tweepy.Client) -> None:
    x.create_tweet(text="@Acme hello?")
    with pytest.raises(tweepy.Forbidden, match="duplicate content"):
        x.create_tweet(text="@Acme hello?")


@pytest.mark.parametrize(
    "body",
    [{}, {"text": ""}, {"text": "hi", "reply": {}}, {"text": "hi", "media": {"media_ids": ["1"]}}],
)
def test_bad_body_is_invalid_request(world: SandboxServer, body: dict[str, object]) -> None:
    response = requests.post(f"{world.url}/2/tweets", json=body, headers=AUTH, timeout=5)
    assert response.status_code == 400
    problem = response.json()
    assert problem["type"] == "https://api.twitter.com/2/problems/invalid-request"
    assert problem["errors"][0]["message"]


def test_no_authorization_is_401(world: SandboxServer) -> None:
    response = requests.get(f"{world.url}/2/users/me", timeout=5)
    assert response.status_code == 401
    assert response.json()["title"] == "Unauthorized"


def test_empty_mentions_have_only_a_result_count(world: SandboxServer, me: str) -> None:
    response = requests.get(f"{world.url}/2/users/{me}/mentions", headers=AUTH, timeout=5)
    assert response.json() == {"meta": {"result_count": 0}}


@pytest.mark.parametrize("max_results", [4, 101])
def test_max_results_outside_5_to_100_is_refused(
    x: tweepy.Client, me: str, max_results: int
) -> None:
    with pytest.raises(tweepy.BadRequest, match="max_results"):
        x.get_users_mentions(me, max_results=max_results, user_auth=True)


def test_polling_with_since_id_sees_every_reply_at_its_true_time(
    x: tweepy.Client, me: str, control: SandboxControl, world: SandboxServer
) -> None:
    sent = [
        x.create_tweet(text=f"@{h} question {i}?").data["id"]
        for i in range(6)
        for h in ("Acme", "Globex")
    ]
    since: str | None = None
    seen: dict[str, tweepy.Tweet] = {}
    users: set[str] = set()
    start = world.world.now()
    for step in range(1, 60):  # poll every 20 virtual minutes for 20 hours
        control.advance_to(start + timedelta(minutes=20 * step))
        posts, since = all_mentions(x, me, since)
        for post in posts:
            assert post.id not in seen, "since_id must never return a post twice"
            seen[str(post.id)] = post
        users |= {post.author_id for post in posts}
    truth = control.posts()
    replies = {r["id"]: r for r in truth["replies"]}
    assert set(seen) == set(replies)
    assert len(replies) == sum(len(p["fate"]["reply_ids"]) for p in truth["posts"]) > 12
    for reply_id, post in seen.items():
        expected = replies[reply_id]
        assert snowflake_time(reply_id) == parse_iso(expected["created_at"])  # to the millisecond
        assert post.created_at == parse_iso(expected["created_at"]).replace(microsecond=0)
        assert str(post.conversation_id) == expected["conversation_id"] == expected["in_reply_to"]
        assert post.referenced_tweets[0].type == "replied_to"
        assert str(post.referenced_tweets[0].id) == expected["in_reply_to"]
        assert str(post.in_reply_to_user_id) == me
        assert post.text.startswith(f"@{RESEARCHER} ")
    assert {p["id"] for p in truth["posts"]} == set(sent)
    for probe in truth["posts"]:
        ids = probe["fate"]["reply_ids"]
        assert parse_iso(replies[ids[0]]["created_at"]) == parse_iso(probe["fate"]["ack_at"])
        assert parse_iso(replies[ids[-1]]["created_at"]) == parse_iso(
            probe["fate"]["resolution_at"]
        )


def test_a_reply_appears_exactly_when_the_clock_reaches_it(
    x: tweepy.Client, me: str, control: SandboxControl
) -> None:
    x.create_tweet(text="@Globex is the shop open on Sunday?")
    ack_at = parse_iso(control.posts()["posts"][0]["fate"]["ack_at"])
    control.advance_to(ack_at - timedelta(milliseconds=1))
    assert all_mentions(x, me)[0] == []
    assert control.posts()["replies"] == []
    control.advance_to(ack_at)
    posts, _ = all_mentions(x, me)
    assert [snowflake_time(p.id) for p in posts] == [ack_at]


def test_pagination_walks_newest_first_without_gaps(
    x: tweepy.Client, me: str, control: SandboxControl
) -> None:
    for i in range(13):
        x.create_tweet(text=f"@Globex q{i}")
    control.advance_to(control.now() + timedelta(days=30))
    pages = list(tweepy.Paginator(x.get_users_mentions, me, max_results=5, user_auth=True))
    assert [p.meta["result_count"] for p in pages] == [5, 5, 3]
    ids = [int(t.id) for p in pages for t in p.data]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 13
    assert pages[0].meta["newest_id"] == str(ids[0]) and pages[-1].meta["oldest_id"] == str(ids[-1])
    assert "next_token" not in pages[-1].meta


def test_only_the_800_most_recent_mentions_are_reachable(
    x: tweepy.Client, me: str, world: SandboxServer
) -> None:
    researcher = world.world.researcher.id
    for i in range(850):
        world.world.create_post(researcher, f"@Globex question number {i}")
    world.world.advance_by(timedelta(days=60))
    reachable = [
        t.id
        for t in tweepy.Paginator(
            x.get_users_mentions, me, max_results=100, user_auth=True
        ).flatten()
    ]
    every_reply = sorted(int(r["id"]) for r in world.ground_truth()["replies"])
    assert len(every_reply) == 850
    assert reachable == every_reply[-800:][::-1]
    # asking for older ones gives a successful, empty answer
    oldest = x.get_users_mentions(me, until_id=every_reply[-800], user_auth=True)
    assert oldest.data is None and oldest.meta == {"result_count": 0}


def test_own_timeline_lists_the_researchers_posts_for_reconciliation(
    x: tweepy.Client, me: str, control: SandboxControl
) -> None:
    first = x.create_tweet(text="@Acme first").data["id"]
    control.advance_to(control.now() + timedelta(seconds=5))
    second = x.create_tweet(text="@Globex second").data["id"]
    timeline = x.get_users_tweets(me, since_id=first, tweet_fields=["created_at"], user_auth=True)
    assert [t.id for t in timeline.data] == [int(second)]
    everything = x.get_users_tweets(me, user_auth=True)
    assert [str(t.id) for t in everything.data] == [second, first]


def test_post_fields_is_read_like_tweet_fields(
    world: SandboxServer, me: str, x: tweepy.Client
) -> None:
    x.create_tweet(text="@Globex fields?")
    world.world.advance_by(timedelta(days=3))
    url = f"{world.url}/2/users/{me}/mentions"
    old = requests.get(
        url, params={"tweet.fields": "created_at,referenced_tweets"}, headers=AUTH, timeout=5
    )
    new = requests.get(
        url, params={"post.fields": "created_at,referenced_posts"}, headers=AUTH, timeout=5
    )
    assert old.json() == new.json()
    assert "referenced_tweets" in old.json()["data"][0]
    bad = requests.get(url, params={"tweet.fields": "colour"}, headers=AUTH, timeout=5)
    assert bad.status_code == 400


def test_search_recent_finds_a_brands_replies_in_a_conversation(
    x: tweepy.Client, control: SandboxControl
) -> None:
    probe = x.create_tweet(text="@Acme can I return this?").data["id"]
    x.create_tweet(text="@Globex unrelated")
    control.advance_to(control.now() + timedelta(days=3))
    truth = control.posts()
    expected = [r["id"] for r in truth["replies"] if r["conversation_id"] == probe]
    found = x.search_recent_tweets(
        f"conversation_id:{probe} is:reply", user_auth=True, max_results=10
    )
    assert sorted(str(t.id) for t in found.data) == sorted(expected)
    author = next(r["author"] for r in truth["replies"] if r["conversation_id"] == probe)
    by_author = x.search_recent_tweets(f"conversation_id:{probe} from:{author}", user_auth=True)
    assert {str(t.id) for t in by_author.data} == {
        r["id"] for r in truth["replies"] if r["conversation_id"] == probe and r["author"] == author
    }
    with pytest.raises(tweepy.BadRequest, match="conversation_id"):
        x.search_recent_tweets("parcel OR refund", user_auth=True)
    with pytest.raises(tweepy.BadRequest, match="512"):
        x.search_recent_tweets("is:reply " * 60, user_auth=True)


def test_search_pages_with_next_token(x: tweepy.Client, control: SandboxControl) -> None:
    for i in range(25):
        x.create_tweet(text=f"@Globex page {i}")
    control.advance_to(control.now() + timedelta(days=2))
    pages = list(
        tweepy.Paginator(x.search_recent_tweets, "from:Globex", max_results=10, user_auth=True)
    )
    assert [p.meta["result_count"] for p in pages] == [10, 10, 5]


def test_rate_limits_are_counted_and_enforced_on_request(
    world: SandboxServer, x: tweepy.Client, me: str, control: SandboxControl
) -> None:
    url = f"{world.url}/2/users/{me}/mentions"
    with requests.Session() as http:
        first = http.get(url, headers=AUTH, timeout=5).headers
        second = http.get(url, headers=AUTH, timeout=5).headers
        assert int(first["x-rate-limit-remaining"]) - 1 == int(second["x-rate-limit-remaining"])
        assert first["x-rate-limit-limit"] == "300"
        control.enforce_rate_limits(True)
        for _ in range(298):
            http.get(url, headers=AUTH, timeout=5)
        refused = http.get(url, headers=AUTH, timeout=5)
        assert refused.status_code == 429
        assert refused.headers["x-rate-limit-remaining"] == "0"
        assert refused.json() == {
            "title": "Too Many Requests",
            "detail": "Too Many Requests",
            "type": "about:blank",
            "status": 429,
        }
        with pytest.raises(tweepy.TooManyRequests) as caught:
            x.get_users_mentions(me, user_auth=True)
        reset = caught.value.reset_time
        assert reset == int(refused.headers["x-rate-limit-reset"])
        control.advance_to(datetime.fromtimestamp(reset, UTC))
        assert http.get(url, headers=AUTH, timeout=5).status_code == 200  # a new window


def test_a_fault_after_the_post_loses_the_answer_but_not_the_post(
    x: tweepy.Client, me: str, control: SandboxControl
) -> None:
    control.add_fault("POST /2/tweets", 503, when="after")
    with pytest.raises(tweepy.TwitterServerError):
        x.create_tweet(text="@Acme did this go through?")
    timeline = x.get_users_tweets(me, user_auth=True)
    assert [t.text for t in timeline.data] == ["@Acme did this go through?"]
    control.add_fault("GET /2/users/:id/mentions", 503, times=2)
    for _ in range(2):
        with pytest.raises(tweepy.TwitterServerError):
            x.get_users_mentions(me, user_auth=True)
    assert x.get_users_mentions(me, user_auth=True).meta == {"result_count": 0}


def test_a_researcher_follow_up_joins_the_conversation(
    x: tweepy.Client, control: SandboxControl
) -> None:
    probe = x.create_tweet(text="@Acme question?").data["id"]
    control.advance_to(control.now() + timedelta(days=3))
    reply_id = control.posts()["replies"][0]["id"]
    follow = x.create_tweet(text="@Acme thanks!", in_reply_to_tweet_id=reply_id).data["id"]
    looked_up = x.get_tweet(
        follow, tweet_fields=["conversation_id", "referenced_tweets"], user_auth=True
    ).data
    assert str(looked_up.conversation_id) == probe
    truth = {p["id"]: p for p in control.posts()["posts"]}
    assert truth[follow]["fate"] is None  # brands answer fresh questions, not thank-yous
    with pytest.raises(tweepy.Forbidden):
        x.create_tweet(text="@Acme to nowhere", in_reply_to_tweet_id="123")
