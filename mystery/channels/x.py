"""X (Twitter) through tweepy's v2 ``Client``: the same code for the real API and the sandbox.

Only the base URL differs. tweepy hard-codes ``https://api.twitter.com``, so the client's public
``session`` is replaced by :class:`RebasedSession`, which rewrites the prefix *before* requests
prepares the request (OAuth 1.0a then signs the URL actually sent) and adds the timeout tweepy
lacks (research/platforms.md §2.2). ``wait_on_rate_limit`` stays off: tweepy would sleep
silently; we raise :class:`RateLimited` and the runner shows the wait.

Times: a post's time is its snowflake id's millisecond timestamp (``created_at`` is rounded to
the second by X), never the time we saw it.

Replies come through the researcher's mentions timeline with ``since_id``: one request per poll
covers every open probe, however many (pages only when more than 100 new mentions arrived).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import requests
import tweepy

from mystery import credentials
from mystery.channels.base import Message, Outgoing, Poll, Sent
from mystery.errors import AuthError, ChannelError, RateLimited, Rejected, TransientError
from mystery.snowflake import snowflake_time

REAL_X = "https://api.x.com"
_TWEEPY_HOST = "https://api.twitter.com"
_FIELDS = ["created_at", "author_id", "conversation_id", "in_reply_to_user_id",
           "referenced_tweets"]
T = TypeVar("T")


class RebasedSession(requests.Session):
    """Send tweepy's hard-coded host to ``base_url``, with a default timeout."""

    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        super().__init__()
        self.base_url = base_url.rstrip("/")
        self.default_timeout = timeout

    def request(self, method: str | bytes, url: str | bytes, *args: Any,
                **kwargs: Any) -> requests.Response:
        if isinstance(url, str) and url.startswith(_TWEEPY_HOST):
            url = self.base_url + url[len(_TWEEPY_HOST):]
        kwargs.setdefault("timeout", self.default_timeout)
        return super().request(method, url, *args, **kwargs)


def _credential_help() -> str:
    names = ", ".join(credentials.env_name(k) for k in credentials.X_OAUTH1)
    return (
        f"set {credentials.env_name(credentials.X_BEARER)} (an OAuth 2.0 user access token) or "
        f"all of {names} (OAuth 1.0a), in the environment or with 'mystery auth x'"
    )


def make_client(base_url: str, sandbox: bool) -> tuple[tweepy.Client, bool]:
    """A tweepy Client for ``base_url`` and whether calls need ``user_auth=True`` (OAuth 1.0a).

    The sandbox accepts any token, so none of the researcher's secrets is ever sent to it.
    """
    if sandbox:
        client = tweepy.Client(bearer_token="sandbox", return_type=dict)
        user_auth = False
    else:
        oauth1 = [credentials.get_secret(k) for k in credentials.X_OAUTH1]
        bearer = credentials.get_secret(credentials.X_BEARER)
        if all(oauth1):
            client = tweepy.Client(
                consumer_key=oauth1[0], consumer_secret=oauth1[1], access_token=oauth1[2],
                access_token_secret=oauth1[3], return_type=dict,
            )
            user_auth = True
        elif bearer:
            client = tweepy.Client(bearer_token=bearer, return_type=dict)
            user_auth = False
        else:
            raise AuthError(f"no X credentials: {_credential_help()}")
    client.session = RebasedSession(base_url)
    if sandbox:
        # Loopback never goes through a proxy, and requests' per-call scan of the proxy
        # environment was a third of a sandbox run's time.
        client.session.trust_env = False
    return client, user_auth


class XChannel:
    """The ``x`` channel. ``account`` is the researcher's handle (checked against the token)."""

    name = "x"

    def __init__(self, account: str, base_url: str = REAL_X, *,
                 visibility_lag: timedelta = timedelta(seconds=60),
                 sandbox: bool = False) -> None:
        self.account = account
        self.base_url = base_url
        self.sandbox = sandbox
        self.visibility_lag = visibility_lag
        self._client: tweepy.Client | None = None
        self._user_auth = False
        self.user_id = ""
        self.requests = 0
        self._authors: dict[str, str] = {}

    # -- plumbing --------------------------------------------------------------------------

    @property
    def client(self) -> tweepy.Client:
        if self._client is None:
            raise ChannelError("the X channel is not open")
        return self._client

    def _call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call tweepy and translate its errors into the channel contract's."""
        self.requests += 1
        try:
            return fn(*args, **kwargs)
        except tweepy.TooManyRequests as exc:
            reset = getattr(exc, "reset_time", None)
            when = datetime.fromtimestamp(reset, tz=UTC) if reset else None
            raise RateLimited(f"X rate limit on {what}", when) from None
        except (tweepy.Unauthorized, tweepy.Forbidden) as exc:
            if isinstance(exc, tweepy.Forbidden) and "duplicate" in str(exc).lower():
                raise Rejected(f"X refused {what} as duplicate content") from None
            raise AuthError(
                f"X refused {what} (HTTP {exc.response.status_code}): {_detail(exc)}; "
                f"check the account and its credentials: {_credential_help()}"
            ) from None
        except tweepy.BadRequest as exc:
            raise Rejected(f"X rejected {what}: {_detail(exc)}") from None
        except tweepy.TwitterServerError as exc:
            raise TransientError(f"X server error on {what}: {_detail(exc)}") from None
        except tweepy.HTTPException as exc:
            if exc.response.status_code == 402:
                raise AuthError(
                    "X answered 402 Payment Required: the account is out of credits; "
                    "top up at console.x.com, then run again"
                ) from None
            raise TransientError(f"X error on {what}: {_detail(exc)}") from None
        except requests.RequestException as exc:
            raise TransientError(f"cannot reach X for {what}: {type(exc).__name__}") from None
        except ValueError as exc:  # malformed JSON body
            raise TransientError(f"X sent a malformed answer to {what}: {exc}") from None

    # -- contract --------------------------------------------------------------------------

    def open(self) -> None:
        self._client, self._user_auth = make_client(self.base_url, self.sandbox)
        me = self._call("GET /2/users/me", self.client.get_me, user_auth=self._user_auth)
        data = me.get("data") or {}
        if data.get("username", "").lower() != self.account.lower():
            raise AuthError(
                f"the X credentials belong to @{data.get('username')}, but the study's "
                f"channels.x.account is @{self.account}; fix one of them"
            )
        self.user_id = str(data["id"])

    def close(self) -> None:
        if self._client is not None:
            self._client.session.close()

    def brand_authors(self, handles: list[str]) -> None:
        """Nothing to resolve: replies carry their author's username via ``expansions``."""

    def send(self, outgoing: Outgoing) -> Sent:
        text = outgoing.compose()
        body = self._call("POST /2/tweets", self.client.create_tweet, text=text,
                          user_auth=self._user_auth)
        post_id = str(body["data"]["id"])
        return Sent(post_id, snowflake_time(post_id), text)

    def find_sent(self, outgoing: Outgoing, since: datetime) -> Sent | None:
        """Look for the probe's exact text among our own posts since ``since``."""
        text = outgoing.compose()
        for post in self._timeline(self.client.get_users_tweets, "GET /2/users/:id/tweets",
                                   start_time=since):
            if post.get("text") == text:
                return Sent(str(post["id"]), snowflake_time(post["id"]), text)
        return None

    def poll(self, cursor: str | None, now: datetime) -> Poll:
        pages_before = self.requests
        newest = cursor
        messages: list[Message] = []
        users: dict[str, str] = {}
        kwargs: dict[str, Any] = {"since_id": cursor} if cursor else {}
        for post, page_users in self._pages(self.client.get_users_mentions,
                                            "GET /2/users/:id/mentions", **kwargs):
            users.update(page_users)
            if newest is None or int(post["id"]) > int(newest):
                newest = str(post["id"])
            messages.append(self._message(post, users))
        return Poll(
            messages=messages,
            cursor=newest,
            complete_through=now - self.visibility_lag,
            requests=self.requests - pages_before,
        )

    # -- helpers ---------------------------------------------------------------------------

    def _pages(self, method: Callable[..., Any], what: str,
               **kwargs: Any) -> list[tuple[Mapping[str, Any], dict[str, str]]]:
        out: list[tuple[Mapping[str, Any], dict[str, str]]] = []
        token: str | None = None
        while True:
            params = dict(kwargs, max_results=100, tweet_fields=_FIELDS,
                          expansions=["author_id"], user_auth=self._user_auth)
            if token:
                params["pagination_token"] = token
            body = self._call(what, method, self.user_id, **params)
            users = {
                str(u["id"]): str(u["username"])
                for u in (body.get("includes") or {}).get("users", [])
            }
            out.extend((post, users) for post in body.get("data") or [])
            token = (body.get("meta") or {}).get("next_token")
            if not token:
                return out

    def _timeline(self, method: Callable[..., Any], what: str,
                  start_time: datetime) -> list[Mapping[str, Any]]:
        start = start_time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return [post for post, _ in self._pages(method, what, start_time=start)]

    def _message(self, post: Mapping[str, Any], users: dict[str, str]) -> Message:
        author_id = str(post.get("author_id", ""))
        replied_to = next(
            (str(r["id"]) for r in post.get("referenced_tweets") or []
             if r.get("type") == "replied_to"),
            None,
        )
        return Message(
            message_id=str(post["id"]),
            author=users.get(author_id, self._authors.get(author_id, author_id)),
            text=str(post.get("text", "")),
            created_at=snowflake_time(post["id"]),
            in_reply_to=replied_to,
            conversation_id=str(post["conversation_id"]) if post.get("conversation_id") else None,
        )


def _detail(exc: tweepy.HTTPException) -> str:
    messages = list(getattr(exc, "api_messages", []) or [])
    return "; ".join(messages) or f"HTTP {exc.response.status_code}"
