"""``GET /2/dm_events``: the researcher's direct messages, as X's v2 API serves them.

Why this endpoint and no other DM route: it is the one inbox across every conversation, so one
request per poll covers every brand, as the mentions timeline does for public replies. It has no
``since_id``: a client pages back from the newest event until it meets one it has seen. So the
sandbox gives what X documents and nothing more: newest first, pages of ``max_results`` (1 to
100, default 100) linked by a base32 ``next_token`` (the OpenAPI ``PaginationToken32``, at least
16 characters), events of the last 30 days only, default fields ``id``, ``event_type`` and
``text``. A DM created after the virtual clock's now is invisible, exactly as a post is.
"""

from __future__ import annotations

import base64
import binascii
from datetime import timedelta
from typing import Any

from mystery.sandbox.params import DM_EXPANSIONS, bad_param, tweet_fields
from mystery.sandbox.routing import Context, Route
from mystery.sandbox.timeline import Query, read_page
from mystery.sandbox.web import Request, Response, json_response
from mystery.sandbox.world import DirectMessage, World, first_id_at
from mystery.sandbox.x_api import render_user, x_text, x_time

DM_REACH = timedelta(days=30)
"""X: "Events from up to 30 days ago are available"."""
EVENT_TYPES = ("MessageCreate", "ParticipantsJoin", "ParticipantsLeave")
DM_EVENT_FIELDS = frozenset((
    "attachments", "created_at", "dm_conversation_id", "entities", "event_type", "id",
    "participant_ids", "referenced_tweets", "referenced_posts", "sender_id", "text",
))  # fmt: skip
"""The 2.166 enum plus the 2.167 rename ``referenced_posts``."""
_TOKEN_BYTES = 10
"""An id as 10 bytes is exactly 16 base32 characters: the spec's minimum token length."""


def encode_dm_token(event_id: int) -> str:
    return base64.b32encode(event_id.to_bytes(_TOKEN_BYTES, "big")).decode().lower()


def decode_dm_token(token: str) -> int:
    """The event id a token stands for; ``ValueError`` when it is not one of ours."""
    if len(token) != 16:
        raise ValueError(token)
    try:
        return int.from_bytes(base64.b32decode(token.upper()), "big")
    except binascii.Error:
        raise ValueError(token) from None


def _listed(req: Request, name: str, allowed: frozenset[str] | tuple[str, ...]) -> set[str]:
    """A comma-separated parameter, every value checked against X's enum (a 400 otherwise)."""
    values = set(filter(None, req.query.get(name, "").split(",")))
    for value in sorted(values):
        if value not in allowed:
            raise bad_param(
                f"The `{name}` query parameter value [{value}] is not one of "
                f"[{', '.join(sorted(allowed))}]",
                name,
                value,
            )
    return values


def render_dm(dm: DirectMessage, fields: set[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"id": str(dm.id), "event_type": "MessageCreate", "text": x_text(dm.text)}
    if "created_at" in fields:
        out["created_at"] = x_time(dm.created_at)
    if "sender_id" in fields:
        out["sender_id"] = dm.sender_id
    if "dm_conversation_id" in fields:
        out["dm_conversation_id"] = dm.conversation_id
    return out


def _query(req: Request, world: World) -> Query:
    raw = req.query.get("max_results")
    limit = 100
    if raw is not None:
        if not raw.isdigit() or not 1 <= int(raw) <= 100:
            raise bad_param(
                f"The `max_results` query parameter value [{raw}] is not between 1 and 100",
                "max_results",
                raw,
            )
        limit = int(raw)
    upto = (1 << 63) - 1
    token = req.query.get("pagination_token")
    if token is not None:
        try:
            upto = decode_dm_token(token) - 1
        except ValueError:
            raise bad_param(
                f"The `pagination_token` query parameter value [{token}] is not a valid "
                "pagination token",
                "pagination_token",
                token,
            ) from None
    oldest = first_id_at(world.now() - DM_REACH) - 1
    return Query(world.ceiling(), oldest, upto, None, limit)


def dm_events(ctx: Context, req: Request) -> Response:
    world = ctx.world
    world.configured  # noqa: B018 - raises NoWorld before PUT /_sandbox/world
    fields = _listed(req, "dm_event.fields", DM_EVENT_FIELDS)
    wanted = _listed(req, "expansions", DM_EXPANSIONS)
    types = _listed(req, "event_types", EVENT_TYPES) or set(EVENT_TYPES)
    tweet_fields(req)  # checked, though no DM here refers to a post
    query = _query(req, world)
    if "MessageCreate" not in types:  # the sandbox's only events are messages
        return json_response(200, {"meta": {"result_count": 0}})
    me = world.acting(req.headers.get("authorization", "")).id
    inbox = [i for i in world.dm_ids if world.dms[i].recipient_id == me]
    ids, more = read_page(inbox, query)
    if not ids:
        return json_response(200, {"meta": {"result_count": 0}})
    events = [world.dms[i] for i in ids]
    body: dict[str, Any] = {"data": [render_dm(dm, fields) for dm in events]}
    if "sender_id" in wanted:
        senders = {dm.sender_id: world.accounts[dm.sender_id] for dm in events}
        body["includes"] = {"users": [render_user(a) for a in senders.values()]}
    meta: dict[str, Any] = {"result_count": len(ids)}
    if more:
        meta["next_token"] = encode_dm_token(ids[-1])
    body["meta"] = meta
    return json_response(200, body)


ROUTES = [Route("GET", "/2/dm_events", dm_events)]
