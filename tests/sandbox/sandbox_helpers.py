"""Helpers shared by the sandbox tests (imported as ``tests.sandbox.sandbox_helpers``)."""

from __future__ import annotations

from typing import Any

import requests
import tweepy

RESEARCHER = "mystery_res"
"""≤ 15 characters, so responses naming it satisfy the OpenAPI ``UserName`` pattern."""
START = "2026-03-02T09:00:00.000Z"
"""A Monday."""


class RebasedSession(requests.Session):
    """Send tweepy's hard-coded https://api.twitter.com to the sandbox."""

    def __init__(self, base_url: str) -> None:
        super().__init__()
        self.base_url = base_url.rstrip("/")

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if url.startswith("https://api.twitter.com"):
            url = self.base_url + url[len("https://api.twitter.com") :]
        kwargs.setdefault("timeout", 10)
        return super().request(method, url, *args, **kwargs)


def brand(
    name: str, handle: str, aliases: list[str] | None = None, **profile: Any
) -> dict[str, Any]:
    """A brand entry of the world body; profile durations in seconds."""
    return {
        "name": name,
        "handles": {"x": handle},
        "aliases": {"x": aliases or []},
        "profile": {"ack_median": 600, "ack_spread": 0.5, **profile},
    }


def world_body(*brands: dict[str, Any], seed: int = 7, **extra: Any) -> dict[str, Any]:
    return {
        "seed": seed,
        "start": START,
        "timezone": "Europe/London",
        "researcher": {"x": RESEARCHER},
        "brands": list(brands)
        or [
            brand("Acme", "Acme", ["AcmeHelp"], holding_share=0.5, resolve_after=3600),
            brand("Globex", "Globex"),
        ],
        **extra,
    }


def make_client(url: str) -> tweepy.Client:
    client = tweepy.Client(
        consumer_key="key",
        consumer_secret="secret",
        access_token="1-token",
        access_token_secret="s",
    )
    client.session = RebasedSession(url)
    return client


MENTION_FIELDS = [
    "created_at",
    "author_id",
    "conversation_id",
    "in_reply_to_user_id",
    "referenced_tweets",
]


def all_mentions(
    client: tweepy.Client, user_id: str, since_id: str | None = None, page: int = 5
) -> tuple[list[tweepy.Tweet], str | None]:
    """Poll once as the X channel does: since_id, then follow next_token; return the posts and the
    newest id (the next since_id)."""
    posts: list[tweepy.Tweet] = []
    token: str | None = None
    newest: str | None = None
    while True:
        response = client.get_users_mentions(
            user_id,
            since_id=since_id,
            max_results=page,
            pagination_token=token,
            tweet_fields=MENTION_FIELDS,
            expansions=["author_id"],
            user_auth=True,
        )
        newest = newest or response.meta.get("newest_id")
        posts += response.data or []
        token = response.meta.get("next_token")
        if token is None:
            return posts, newest or since_id
