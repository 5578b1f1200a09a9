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
That timeline reaches only the 800 most recent mentions, so a poll after a long downtime can
come back short; it then says which stretch it missed (:class:`~mystery.channels.catchup.Gap`)
and :meth:`XChannel.thread` searches a probe's conversation instead (7 days back).

With ``read_dms`` each poll also reads the researcher's direct messages (:mod:`x_dms`): a
brand's DM comes back as a ``Message`` with ``direct=True`` and no thread, and both cursors
share the one cursor string the runner stores.

Nothing X sends is trusted blindly: an item without a usable id is skipped with a warning, a
body that is not the JSON object promised is a :class:`TransientError` (read again later; for a
post, an *uncertain* send that the runner reconciles).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import requests
import tweepy

from mystery import credentials
from mystery.channels.base import Message, Outgoing, Sent
from mystery.channels.catchup import Gap, GappedPoll, Thread
from mystery.channels.paging import Pages
from mystery.channels.x_billing import ReadKind, Spend
from mystery.channels.x_dms import join_cursor, read_dms, split_cursor
from mystery.clock import snowflake_time
from mystery.errors import AuthError, ChannelError, RateLimited, Rejected, TransientError

REAL_X = "https://api.x.com"
_TWEEPY_HOST = "https://api.twitter.com"
_FIELDS = ["created_at", "author_id", "conversation_id", "in_reply_to_user_id",
           "referenced_tweets"]
MENTIONS_REACH = 800
"""X: only the 800 most recent mentions can be read."""
SEARCH_REACH = timedelta(days=7)
"""X: recent search covers the last 7 days."""
_SEARCH_MARGIN = timedelta(hours=1)
"""Trust search only this far inside its horizon: our clock and X's may disagree a little."""
_RECHECK_AFTER = timedelta(hours=6)
"""After this long without a poll (or on a fresh start), an empty poll is double-checked."""
_ID = re.compile(r"^[0-9]{1,19}$")
_LINK = re.compile(r"https?://\S+")
# 403s that refuse one post, not our credentials (X's own wording).
_REFUSALS = ("duplicate", "too long", "deleted or not visible", "not allowed to reply",
             "reply to this conversation", "summoned")
T = TypeVar("T")
_READS: dict[str, ReadKind] = {
    "GET /2/users/:id/mentions": "owned",
    "GET /2/users/:id/tweets": "owned",
    "GET /2/tweets/:id": "post",
    "GET /2/tweets/search/recent": "post",
    "GET /2/dm_events": "dm",
}
"""What each read is billed as (``mystery.channels.x_billing``); user lookups are not counted."""


class RebasedSession(requests.Session):
    """Send tweepy's hard-coded host to ``base_url``, with a default timeout (seconds)."""

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


def _credential_help(oauth1: bool | None = None) -> str:
    """Which credentials to fix: the ones in use when known, else both ways to log in."""
    oauth_names = ", ".join(credentials.env_name(k) for k in credentials.X_OAUTH1)
    bearer = credentials.env_name(credentials.X_BEARER)
    if oauth1 is True:
        return f"fix {oauth_names} (OAuth 1.0a), in the environment or with 'mystery auth'"
    if oauth1 is False:
        return f"fix {bearer} (an OAuth 2.0 user access token), in the environment or with " \
               "'mystery auth'"
    return (
        f"set {bearer} (an OAuth 2.0 user access token) or all of {oauth_names} (OAuth 1.0a), "
        "in the environment or with 'mystery auth'"
    )


def make_client(base_url: str, sandbox: bool, timeout: float = 30.0,
                account: str | None = None) -> tuple[tweepy.Client, bool]:
    """A tweepy Client for ``base_url`` and whether calls need ``user_auth=True`` (OAuth 1.0a).

    The sandbox accepts any token, so none of the researcher's secrets is ever sent to it.
    ``account``: whose keys (its own first, see :mod:`mystery.credentials`).
    """
    if sandbox:  # the token names the account: the sandbox may emulate several
        token = f"sandbox:{account}" if account else "sandbox"
        client = tweepy.Client(bearer_token=token, return_type=dict)
        user_auth = False
    else:
        oauth1 = [credentials.get_secret(k, account=account) for k in credentials.X_OAUTH1]
        bearer = credentials.get_secret(credentials.X_BEARER, account=account)
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
    client.session = RebasedSession(base_url, timeout)
    if sandbox:
        # Loopback never goes through a proxy, and requests' per-call scan of the proxy
        # environment was a third of a sandbox run's time.
        client.session.trust_env = False
    return client, user_auth


def same_text(posted: str, composed: str) -> bool:
    """Whether a post's text as X returns it is the text we composed. X escapes ``&<>`` as
    HTML entities, wraps links in t.co and may trim or normalise whitespace."""
    return _normalise(_unescape(posted)) == _normalise(composed)


def _unescape(text: str) -> str:
    """X's v2 text with the three entities X adds decoded (``&amp;`` last, so ``&amp;lt;``
    stays the ``&lt;`` someone typed)."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _normalise(text: str) -> str:
    text = unicodedata.normalize("NFC", text)
    return " ".join(_LINK.sub("<link>", text).split())


def _post_id(item: object) -> str | None:
    """The item's id if it is a post id at all."""
    if not isinstance(item, Mapping):
        return None
    raw = item.get("id")
    text = str(raw) if isinstance(raw, str | int) and not isinstance(raw, bool) else ""
    return text if _ID.match(text) and int(text) > 0 else None


def _optional_id(value: object) -> str | None:
    text = str(value) if isinstance(value, str | int) and not isinstance(value, bool) else ""
    return text if _ID.match(text) else None


class XChannel:
    """The ``x`` channel. ``account`` is the researcher's handle (checked against the token);
    ``timeout`` bounds every request, in seconds; ``read_dms`` reads direct messages too."""

    name = "x"

    def __init__(self, account: str, base_url: str = REAL_X, *,
                 visibility_lag: timedelta = timedelta(seconds=60),
                 sandbox: bool = False, timeout: float = 30.0, read_dms: bool = False) -> None:
        self.account = account
        self.read_dms = read_dms
        self.base_url = base_url
        self.sandbox = sandbox
        self.visibility_lag = visibility_lag
        self.timeout = timeout
        self._client: tweepy.Client | None = None
        self._user_auth = False
        self.user_id = ""
        self.requests = 0
        self.skipped = 0  # items X sent that could not be used
        self._authors: dict[str, str] = {}
        self._last_poll: datetime | None = None
        self.spend = Spend()  # what this channel has cost on X's pay-per-use API

    # -- plumbing --------------------------------------------------------------------------

    @property
    def client(self) -> tweepy.Client:
        if self._client is None:
            raise ChannelError("the X channel is not open")
        return self._client

    def _call(self, what: str, fn: Callable[..., Any], *args: Any,
              **kwargs: Any) -> dict[str, Any]:
        """Call tweepy and translate its errors into the channel contract's."""
        self.requests += 1
        try:
            body = fn(*args, **kwargs)
        except tweepy.TooManyRequests as exc:
            reset = getattr(exc, "reset_time", None)
            when = datetime.fromtimestamp(reset, tz=UTC) if reset else None
            raise RateLimited(f"X rate limit on {what}", when) from None
        except (tweepy.Unauthorized, tweepy.Forbidden) as exc:
            detail = _detail(exc)
            if isinstance(exc, tweepy.Forbidden) and any(
                    word in detail.lower() for word in _REFUSALS):
                raise Rejected(f"X refused {what}: {detail}") from None
            raise AuthError(
                f"X refused {what} (HTTP {exc.response.status_code}): {detail}; check the "
                f"account @{self.account} and its credentials: "
                f"{_credential_help(None if self.sandbox else self._user_auth)}"
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
        except requests.JSONDecodeError:  # before RequestException: it is one too
            raise TransientError(f"X sent a malformed answer to {what} (not JSON)") from None
        except requests.Timeout:
            raise TransientError(
                f"X did not answer {what} within {self.timeout:g} s") from None
        except requests.RequestException as exc:
            raise TransientError(f"cannot reach X for {what}: {type(exc).__name__}") from None
        except (AttributeError, TypeError, KeyError, ValueError) as exc:
            # tweepy reading an error body that is JSON but not an object, and the like
            raise TransientError(f"X sent a malformed answer to {what}: {exc!r}") from None
        if not isinstance(body, dict):
            raise TransientError(f"X sent a malformed answer to {what}: not a JSON object")
        kind = _READS.get(what)
        if kind is not None:  # X bills each resource returned, even one we then skip
            data = body.get("data")
            self.spend.read(len(data) if isinstance(data, list) else int(bool(data)), kind)
        return body

    # -- contract --------------------------------------------------------------------------

    def open(self) -> None:
        self._client, self._user_auth = make_client(self.base_url, self.sandbox, self.timeout,
                                                      self.account)
        me = self._call("GET /2/users/me", self.client.get_me, user_auth=self._user_auth)
        data = me.get("data")
        data = data if isinstance(data, dict) else {}
        username = str(data.get("username", ""))
        if username.lower() != self.account.lower():
            raise AuthError(
                f"the X credentials belong to @{username or '?'}, but the study's "
                f"channels.x.account is @{self.account}; fix one of them"
            )
        user_id = _optional_id(data.get("id"))
        if user_id is None:
            raise TransientError("X sent a malformed answer to GET /2/users/me: no user id")
        self.user_id = user_id

    def close(self) -> None:
        if self._client is not None:
            self._client.session.close()

    def brand_authors(self, handles: list[str]) -> None:
        """Nothing to resolve: replies carry their author's username via ``expansions``."""

    def send(self, outgoing: Outgoing) -> Sent:
        text = outgoing.compose()
        body = self._call("POST /2/tweets", self.client.create_tweet, text=text,
                          user_auth=self._user_auth)
        self.spend.posted(text)
        post_id = _post_id(body.get("data"))
        if post_id is None:
            # It may well have been posted: the runner reconciles before anything else.
            raise TransientError("X answered POST /2/tweets without a post id")
        return Sent(post_id, snowflake_time(post_id), text)

    def find_sent(self, outgoing: Outgoing, since: datetime) -> Sent | None:
        """Look for the probe's text among our own posts since ``since`` (whole seconds,
        rounded down: X's ``start_time`` has second granularity and is inclusive), across
        every page."""
        text = outgoing.compose()
        start = since.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")
        posts, _ = self._pages(self.client.get_users_tweets, "GET /2/users/:id/tweets",
                               self.user_id, start_time=start)
        found = [i for p in posts
                 if (i := _post_id(p)) and same_text(str(p.get("text", "")), text)]
        if not found:
            return None
        first = min(found, key=int)  # were it there twice, the first is what the brand saw
        return Sent(first, snowflake_time(first), text)

    def fetch_own(self, message_id: str) -> Sent | None:
        """Our own post ``message_id`` (``mystery sent`` names it), or None when X has no
        such post or it is someone else's. Its time is the id's, like every X time."""
        if not _ID.match(message_id):
            return None
        body = self._call("GET /2/tweets/:id", self.client.get_tweet, message_id,
                          tweet_fields=["author_id", "created_at"], user_auth=self._user_auth)
        data = body.get("data")
        if not isinstance(data, dict) or _post_id(data) != message_id \
                or str(data.get("author_id", "")) != self.user_id:
            return None
        return Sent(message_id, snowflake_time(message_id), _unescape(str(data.get("text", ""))))

    def edit_history(self, post_id: str) -> list[str]:
        """Every version's id of our own post ``post_id``, from ``edit_history_tweet_ids`` (or
        2.167's ``edit_history_post_ids``): a reply to an edited probe carries the edit's id."""
        if not _ID.match(post_id):
            return []
        body = self._call("GET /2/tweets/:id", self.client.get_tweet, post_id,
                          tweet_fields=["author_id", "edit_history_tweet_ids"],
                          user_auth=self._user_auth)
        data = body.get("data")
        if not isinstance(data, dict) or str(data.get("author_id", "")) != self.user_id:
            return []
        history = data.get("edit_history_tweet_ids", data.get("edit_history_post_ids"))
        ids = [str(i) for i in history if _optional_id(i)] if isinstance(history, list) else []
        return ids or [post_id]

    def poll(self, cursor: str | None, now: datetime) -> GappedPoll:
        before = self.requests
        cursor, dm_cursor = split_cursor(cursor)
        kwargs: dict[str, Any] = {"since_id": cursor} if cursor else {}
        posts, users = self._pages(self.client.get_users_mentions, "GET /2/users/:id/mentions",
                                   self.user_id, **kwargs)
        warnings: list[str] = []
        gap: Gap | None = None
        if cursor and not posts and self._should_recheck(now):
            posts, users, gap = self._recheck(cursor, warnings)
        messages, newest = self._messages(posts, users, cursor, warnings)
        if cursor and gap is None and messages:
            oldest = min(int(m.message_id) for m in messages)
            if len({m.message_id for m in messages}) >= MENTIONS_REACH and oldest > int(cursor):
                gap = Gap(snowflake_time(cursor), snowflake_time(oldest))
        if self.read_dms:
            dms = read_dms(self._call, self.client, user_auth=self._user_auth,
                           own_id=self.user_id, cursor=dm_cursor, names=self._authors)
            messages += dms.messages
            warnings += dms.warnings
            self.skipped += dms.skipped
            newest = join_cursor(newest, dms.cursor)
        self._last_poll = now
        return GappedPoll(
            messages=messages,
            cursor=newest,
            complete_through=now - self.visibility_lag,
            requests=self.requests - before,
            warnings=warnings,
            gap=gap,
        )

    def thread(self, root_id: str, now: datetime) -> Thread:
        """Our post ``root_id``'s conversation from recent search, our own posts left out."""
        posts, users = self._pages(
            self.client.search_recent_tweets, "GET /2/tweets/search/recent",
            f"conversation_id:{root_id}", token_param="next_token",
        )
        theirs = [p for p in posts
                  if not (isinstance(p, Mapping) and str(p.get("author_id")) == self.user_id)]
        messages, _ = self._messages(theirs, users, None, [])
        return Thread(messages, complete_after=now - SEARCH_REACH + _SEARCH_MARGIN)

    # -- helpers ---------------------------------------------------------------------------

    def _should_recheck(self, now: datetime) -> bool:
        return self._last_poll is None or now - self._last_poll > _RECHECK_AFTER

    def _recheck(self, cursor: str,
                 warnings: list[str]) -> tuple[list[Any], dict[str, str], Gap | None]:
        """An empty answer after a long pause may mean the cursor lies beyond the 800
        reachable mentions (X then answers "successfully, with no data"): ask for the newest
        without ``since_id``, and if there are newer ones, read all that can be read."""
        body = self._call("GET /2/users/:id/mentions", self.client.get_users_mentions,
                          self.user_id, max_results=5, user_auth=self._user_auth)
        data = body.get("data")
        newest = [i for p in data or [] if (i := _post_id(p))] if isinstance(data, list) else []
        if not newest or max(int(i) for i in newest) <= int(cursor):
            return [], {}, None
        posts, users = self._pages(self.client.get_users_mentions,
                                   "GET /2/users/:id/mentions", self.user_id)
        posts = [p for p in posts if (i := _post_id(p)) is None or int(i) > int(cursor)]
        ids = [int(i) for p in posts if (i := _post_id(p))]
        if not ids:
            return [], {}, None
        warnings.append("X answered nothing newer than our cursor although newer mentions "
                        "exist: the cursor lies beyond the 800 mentions X can reach")
        return posts, users, Gap(snowflake_time(cursor), snowflake_time(min(ids)))

    def _pages(self, method: Callable[..., Any], what: str, *args: Any,
               token_param: str = "pagination_token",
               **kwargs: Any) -> tuple[list[Any], dict[str, str]]:
        """Every item of every page (raw: the caller checks them) and the users included."""
        items: list[Any] = []
        users: dict[str, str] = {}
        token: str | None = None
        pages = Pages("X", what)
        while True:
            params = dict(kwargs, max_results=100, tweet_fields=_FIELDS,
                          expansions=["author_id"], user_auth=self._user_auth)
            if token:
                params[token_param] = token
            body = self._call(what, method, *args, **params)
            data = body.get("data", [])
            if not isinstance(data, list):
                raise TransientError(f"X sent a malformed answer to {what}: data is not a list")
            items.extend(data)
            includes = body.get("includes")
            for user in (includes.get("users") if isinstance(includes, dict) else None) or []:
                if isinstance(user, dict) and _optional_id(user.get("id")) and isinstance(
                        user.get("username"), str):
                    users[str(user["id"])] = user["username"]
            meta = body.get("meta")
            token = meta.get("next_token") if isinstance(meta, dict) else None
            if not isinstance(token, str) or not token:
                return items, users
            token = pages.next(token)

    def _messages(self, posts: list[Any], users: dict[str, str], cursor: str | None,
                  warnings: list[str]) -> tuple[list[Message], str | None]:
        """Usable, distinct messages, oldest first, and the newest id seen (the next cursor).
        Duplicates and disorder are harmless; unusable items are skipped and counted."""
        newest = cursor
        found: dict[str, Message] = {}
        bad = 0
        for post in posts:
            post_id = _post_id(post)
            if post_id is None:
                bad += 1
                continue
            if newest is None or int(post_id) > int(newest):
                newest = post_id
            if post_id not in found:
                found[post_id] = self._message(post_id, post, users)
        if bad:
            self.skipped += bad
            warnings.append(f"skipped {bad} item(s) X sent without a usable post id")
        return [found[k] for k in sorted(found, key=int)], newest

    def _message(self, post_id: str, post: Mapping[str, Any],
                 users: dict[str, str]) -> Message:
        author_id = _optional_id(post.get("author_id")) or ""
        # X's v2.167 spec renames the field; tweepy and the July spec use the old name.
        referenced = post.get("referenced_tweets", post.get("referenced_posts"))
        replied_to = next(
            (i for r in referenced if isinstance(r, dict) and r.get("type") == "replied_to"
             and (i := _optional_id(r.get("id")))),
            None,
        ) if isinstance(referenced, list) else None
        text = post.get("text")
        return Message(
            message_id=post_id,
            author=users.get(author_id, self._authors.get(author_id, author_id)),
            text=_unescape(text) if isinstance(text, str) else "",
            created_at=snowflake_time(post_id),
            in_reply_to=replied_to,
            conversation_id=_optional_id(post.get("conversation_id")),
            to_us=str(post.get("in_reply_to_user_id", "")) == self.user_id,
        )


def _detail(exc: tweepy.HTTPException) -> str:
    messages = [str(m) for m in getattr(exc, "api_messages", []) or []]
    return "; ".join(messages) or f"HTTP {exc.response.status_code}"
