"""Reading the researcher's X direct messages, for studies with ``read_dms = true``.

Brands often answer in public with "we've sent you a DM" and resolve in a direct message. Those
DMs come from ``GET /2/dm_events`` (tweepy ``Client.get_direct_message_events``): one inbox
across every conversation, newest first, reaching 30 days back, and, unlike the mentions
timeline, without ``since_id``. So a poll pages back from the newest event until it meets one
at or below its DM cursor (the newest event id it has already returned; event ids are snowflakes,
like post ids). X bills every event a page returns, new or already seen (once per UTC day), and
most polls find no new DM, so a poll first asks for the newest event alone; while a page holds
only new events it asks again from the top for a page five times larger, up to
:data:`DM_PAGE`, then follows ``next_token``. (Asking afresh, not following a token made for
another page size; re-reading the newest events within a UTC day costs nothing more.) A quiet
poll reads one event, a poll with a few new DMs a few more.

Both cursors travel in the one cursor string the runner stores for the channel:
``"<mentions>|<dms>"``, either part possibly empty. A cursor without ``|`` is one stored before
DMs were read, or by a study that does not read them: all of it is the mentions cursor.

A DM's time is X's ``created_at``, which X gives in whole seconds; when the event id's snowflake
falls within that second it carries the milliseconds too, and that is the time used.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import tweepy

from mystery.channels.base import Message
from mystery.channels.paging import Pages
from mystery.clock import parse_iso, snowflake_time
from mystery.errors import AuthError, TransientError

DM_FIELDS = ["id", "text", "event_type", "created_at", "sender_id", "dm_conversation_id"]
DM_PAGE = 100
"""The largest page, X's maximum: requests are scarce too (15 per 15 minutes)."""
_ID = re.compile(r"^[0-9]{1,19}$")
_WHAT = "GET /2/dm_events"

_DM_ACCESS = (
    "Reading direct messages (channels.x.read_dms) needs DM access: an OAuth 2.0 token with the "
    "dm.read scope, or an OAuth 1.0a app with 'Read and write and Direct Messages' permission "
    "and access tokens made after that setting; or set read_dms = false"
)
Call = Callable[..., dict[str, Any]]
""":meth:`XChannel._call`: runs a tweepy method and maps its errors to the channel contract's."""


def split_cursor(cursor: str | None) -> tuple[str | None, str | None]:
    """The mentions cursor and the DM cursor inside a stored cursor."""
    if not cursor:
        return None, None
    mentions, _, dms = cursor.partition("|")
    return mentions or None, dms or None


def join_cursor(mentions: str | None, dms: str | None) -> str | None:
    if mentions is None and dms is None:
        return None
    return f"{mentions or ''}|{dms or ''}"


def _id(value: object) -> str | None:
    text = str(value) if isinstance(value, str | int) and not isinstance(value, bool) else ""
    return text if _ID.match(text) and int(text) > 0 else None


def dm_time(event_id: str, created_at: object) -> datetime:
    """``created_at`` refined to the millisecond by the event id when the two agree."""
    precise = snowflake_time(event_id)
    if not isinstance(created_at, str):
        return precise
    try:
        stated = parse_iso(created_at)
    except ValueError:
        return precise
    return precise if stated <= precise < stated + timedelta(seconds=1) else stated


@dataclass
class DmRead:
    """New DMs from others (oldest first), the next DM cursor, and what could not be used."""

    messages: list[Message]
    cursor: str | None
    skipped: int = 0
    warnings: list[str] = field(default_factory=list)


def read_dms(call: Call, client: tweepy.Client, *, user_auth: bool, own_id: str,
             cursor: str | None, names: dict[str, str]) -> DmRead:
    """Every ``MessageCreate`` event newer than ``cursor`` not sent by us (``own_id``).

    ``names`` maps user ids to usernames; senders missing from a page's ``includes`` are looked
    up (``GET /2/users/:id``) and added to it."""

    def page(size: int, token: str | None = None) -> tuple[list[Any], str | None]:
        params: dict[str, Any] = dict(
            dm_event_fields=DM_FIELDS, event_types=["MessageCreate"], expansions=["sender_id"],
            user_fields=["username"], max_results=size, user_auth=user_auth,
        )
        if token:
            params["pagination_token"] = token
        try:
            body = call(_WHAT, client.get_direct_message_events, **params)
        except AuthError as exc:
            raise AuthError(f"{exc}. {_DM_ACCESS}") from None
        data = body.get("data", [])
        if not isinstance(data, list):
            raise TransientError(f"X sent a malformed answer to {_WHAT}: data is not a list")
        _remember_users(body, names)
        meta = body.get("meta")
        following = meta.get("next_token") if isinstance(meta, dict) else None
        return data, following if isinstance(following, str) and following else None

    found: dict[str, tuple[str, Mapping[str, Any]]] = {}
    newest = cursor
    bad = 0
    size = 1 if cursor is not None else DM_PAGE
    token: str | None = None
    pages = Pages("X", _WHAT)
    while True:
        data, following = page(size, token)
        reached = False
        for event in data:
            event_id = _id(event.get("id")) if isinstance(event, Mapping) else None
            if event_id is None:
                bad += 1
                continue
            if cursor is not None and int(event_id) <= int(cursor):
                reached = True  # newest first: the rest of the inbox is older still
                continue
            if newest is None or int(event_id) > int(newest):
                newest = event_id
            sender = _id(event.get("sender_id"))
            if event.get("event_type", "MessageCreate") == "MessageCreate" and sender != own_id:
                found.setdefault(event_id, (sender or "", event))
        if reached or following is None:
            break
        if size < DM_PAGE:  # all new so far: read again from the top, a larger page
            size, token, bad = min(DM_PAGE, size * 5), None, 0
            continue
        token = pages.next(following)
    for sender in sorted({s for s, _ in found.values() if s and s not in names}):
        _look_up(call, client, sender, user_auth, names)
    messages = [_message(i, sender, event, names) for i, (sender, event) in found.items()]
    messages.sort(key=lambda m: int(m.message_id))
    warnings = [f"skipped {bad} DM event(s) X sent without a usable id"] if bad else []
    return DmRead(messages, newest, bad, warnings)


def _remember_users(body: Mapping[str, Any], names: dict[str, str]) -> None:
    includes = body.get("includes")
    for user in (includes.get("users") if isinstance(includes, dict) else None) or []:
        if isinstance(user, dict) and _id(user.get("id")) and isinstance(user.get("username"), str):
            names[str(user["id"])] = user["username"]


def _look_up(call: Call, client: tweepy.Client, user_id: str, user_auth: bool,
             names: dict[str, str]) -> None:
    """A sender X left out of ``includes``: without a name it could not be told for a brand."""
    body = call("GET /2/users/:id", client.get_user, id=user_id, user_auth=user_auth)
    data = body.get("data")
    if isinstance(data, dict) and isinstance(data.get("username"), str):
        names[user_id] = data["username"]


def _message(event_id: str, sender: str, event: Mapping[str, Any],
             names: dict[str, str]) -> Message:
    text = event.get("text")
    return Message(
        message_id=event_id,
        author=names.get(sender, sender),
        text=_unescape(text) if isinstance(text, str) else "",
        created_at=dm_time(event_id, event.get("created_at")),
        in_reply_to=None,
        conversation_id=None,
        direct=True,
    )


def _unescape(text: str) -> str:
    """X's v2 text with the entities it adds decoded (``&amp;`` last), as for posts."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
