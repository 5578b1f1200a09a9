"""Query parameters of the X routes, checked as strictly as X checks them.

Why every timeline parameter ends up as an id range: ``since_id``/``until_id`` are ids,
``start_time``/``end_time`` become the first id of their millisecond, and a pagination token is
an id (see :mod:`mystery.sandbox.timeline`), so one :class:`Query` describes any page.
A bad value is answered with X's 400 ``invalid-request`` problem naming the parameter, and so is
a parameter the endpoint does not declare, one given twice, or an unknown expansion
(:func:`check_query`): X refuses them, so a client that sends them must fail here first.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from urllib.parse import parse_qsl

from mystery.clock import parse_iso
from mystery.sandbox.timeline import Query, decode_token
from mystery.sandbox.web import Reject, Request, invalid_request
from mystery.sandbox.world import World, first_id_at

ID = re.compile(r"^[0-9]{1,19}$")
# fmt: off
TWEET_FIELDS = frozenset((
    "article", "attachments", "author_id", "card_uri", "community_id", "context_annotations",
    "conversation_id", "created_at", "display_text_range", "edit_controls",
    "edit_history_tweet_ids", "entities", "geo", "id", "in_reply_to_user_id", "lang",
    "matched_media_notes", "media_metadata", "non_public_metrics", "note_request_suggestions",
    "note_tweet", "organic_metrics", "paid_partnership", "possibly_sensitive",
    "promoted_metrics", "public_metrics", "referenced_tweets", "reply_settings", "scopes",
    "source", "suggested_source_links", "suggested_source_links_with_counts", "text", "withheld",
    "edit_history_post_ids", "referenced_posts", "note_post",
))
# fmt: on
"""The 2.166 enum plus the 2.167 renames, which are read as their old names."""


_FIELDS = ("tweet.fields", "post.fields", "user.fields", "media.fields", "poll.fields",
           "place.fields")  # fmt: skip
_TIMELINE = ("since_id", "until_id", "max_results", "pagination_token", "start_time", "end_time")
# fmt: off
TWEET_EXPANSIONS = frozenset((
    "article.cover_media", "article.media_entities", "attachments.media_keys",
    "attachments.media_source_tweet", "attachments.poll_ids", "author_id",
    "edit_history_tweet_ids", "entities.mentions.username", "entities.note.mentions.username",
    "geo.place_id", "in_reply_to_user_id", "referenced_tweets.id",
    "referenced_tweets.id.attachments.media_keys", "referenced_tweets.id.author_id",
    "edit_history_post_ids", "referenced_posts", "username",
))
# fmt: on
"""The posts' ``expansions`` enum of 2.166 plus the values 2.167 adds (``referenced_posts`` is
read as ``referenced_tweets.id``)."""
USER_EXPANSIONS = frozenset((
    "affiliation.user_id", "most_recent_tweet_id", "pinned_tweet_id",
    "affiliation", "most_recent_post_id", "pinned_post_id",
))  # fmt: skip
DM_EXPANSIONS = frozenset((
    "attachments.media_keys", "participant_ids", "referenced_tweets.id", "sender_id",
    "referenced_posts",
))  # fmt: skip


def _declared(*names: str) -> frozenset[str]:
    return frozenset(names)


_USER = _declared("user.fields", "expansions", "tweet.fields", "post.fields")
_POSTS = _declared("expansions", *_FIELDS)
DECLARED: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "GET /2/users/me": (_USER, USER_EXPANSIONS),
    "GET /2/users/by/username/:username": (_USER, USER_EXPANSIONS),
    "GET /2/users/by": (_USER | {"usernames"}, USER_EXPANSIONS),
    "GET /2/users/:id": (_USER, USER_EXPANSIONS),
    "GET /2/users/:id/mentions": (_POSTS | set(_TIMELINE), TWEET_EXPANSIONS),
    "GET /2/users/:id/tweets": (_POSTS | {*_TIMELINE, "exclude"}, TWEET_EXPANSIONS),
    "POST /2/tweets": (frozenset(), frozenset()),
    "GET /2/tweets": (_POSTS | {"ids"}, TWEET_EXPANSIONS),
    "GET /2/tweets/:id": (_POSTS, TWEET_EXPANSIONS),
    "GET /2/tweets/search/recent": (
        _POSTS | {*_TIMELINE, "query", "next_token", "sort_order"},
        TWEET_EXPANSIONS,
    ),
    "GET /2/dm_events": (
        _declared("max_results", "pagination_token", "event_types", "dm_event.fields")
        | {"expansions", "media.fields", "user.fields", "tweet.fields", "post.fields"},
        DM_EXPANSIONS,
    ),
}
"""Per route: the query parameters the OpenAPI spec declares for its operation (2.166 and 2.167
together, so both spellings of the post fields pass), and the ``expansions`` it allows."""


def check_query(route: str, req: Request) -> None:
    """Refuse what X refuses before any parameter is read: one it does not declare for this
    endpoint, one given more than once, an unknown ``expansions`` value.

    Why the sandbox is this strict: X answers all three with 400, so a client that sends them (a
    typo, a list repeated instead of comma-joined, a 2.167 name sent to an endpoint that never
    had it) works here and breaks live. Values are checked by the routes themselves.
    """
    declared, allowed_expansions = DECLARED[route]
    given: dict[str, list[str]] = {}
    pairs = parse_qsl(req.query_string, keep_blank_values=True) if req.query_string else [
        *req.query.items()
    ]
    for name, value in pairs:
        given.setdefault(name, []).append(value)
    for name, values in given.items():
        if name not in declared:
            raise Reject(
                invalid_request(
                    f"The query parameter [{name}] is not one of "
                    f"[{','.join(sorted(declared))}]",
                    {name: values},
                )
            )
        if len(values) > 1:
            raise Reject(
                invalid_request(
                    f"Duplicate parameters are not allowed: the `{name}` query parameter "
                    f"was given {len(values)} times",
                    {name: values},
                )
            )
    for value in filter(None, given.get("expansions", [""])[0].split(",")):
        if value not in allowed_expansions:
            raise bad_param(
                f"The `expansions` query parameter value [{value}] is not one of "
                f"[{', '.join(sorted(allowed_expansions))}]",
                "expansions",
                value,
            )


def bad_param(message: str, name: str, value: str) -> Reject:
    return Reject(invalid_request(message, {name: [value]}))


def id_param(req: Request, name: str) -> int | None:
    value = req.query.get(name)
    if value is None:
        return None
    if not ID.match(value):
        raise bad_param(
            f"The `{name}` query parameter value [{value}] does not match ^[0-9]{{1,19}}$",
            name,
            value,
        )
    return int(value)


def time_param(req: Request, name: str) -> datetime | None:
    value = req.query.get(name)
    if value is None:
        return None
    try:
        return parse_iso(value)
    except ValueError:
        raise bad_param(
            f"Invalid '{name}':'{value}'. '{name}' must be a valid RFC 3339 timestamp.", name, value
        ) from None


def tweet_fields(req: Request) -> frozenset[str]:
    requested: set[str] = set()
    for name in ("tweet.fields", "post.fields"):
        for value in filter(None, req.query.get(name, "").split(",")):
            if value not in TWEET_FIELDS:
                raise bad_param(
                    f"The `{name}` query parameter value [{value}] is not one of "
                    f"[{', '.join(sorted(TWEET_FIELDS))}]",
                    name,
                    value,
                )
            requested.add({"referenced_posts": "referenced_tweets"}.get(value, value))
    return frozenset(requested)


def timeline_query(
    req: Request,
    world: World,
    *,
    low: int,
    high: int,
    token_names: tuple[str, ...],
    cap: int | None,
    keep: Callable[[int], bool] | None = None,
) -> Query:
    """Turn the shared timeline parameters into an id range (see :mod:`timeline`)."""
    raw = req.query.get("max_results")
    limit = 10
    if raw is not None:
        if not raw.isdigit() or not low <= int(raw) <= high:
            raise bad_param(
                f"The `max_results` query parameter value [{raw}] is not between {low} and {high}",
                "max_results",
                raw,
            )
        limit = int(raw)
    since_id, until_id = id_param(req, "since_id"), id_param(req, "until_id")
    if since_id is not None and until_id is not None and since_id >= until_id:
        raise bad_param("since_id must be less than until_id", "since_id", str(since_id))
    start, end = time_param(req, "start_time"), time_param(req, "end_time")
    after, upto = 0, (1 << 63) - 1
    if since_id is not None:
        after = since_id
    elif start is not None:
        after = first_id_at(start) - 1
    if until_id is not None:
        upto = until_id - 1
    elif end is not None:
        upto = first_id_at(end) - 1
    for name in token_names:
        token = req.query.get(name)
        if token is not None:
            try:
                upto = min(upto, decode_token(token) - 1)
            except ValueError:
                raise bad_param(
                    f"The `{name}` query parameter value [{token}] is not a valid pagination token",
                    name,
                    token,
                ) from None
    return Query(world.ceiling(), after, upto, cap, limit, keep)


def expansions(req: Request) -> set[str]:
    """Requested expansions, already checked by :func:`check_query`; 2.167's
    ``referenced_posts`` is read as ``referenced_tweets.id``."""
    wanted = set(filter(None, req.query.get("expansions", "").split(",")))
    if "referenced_posts" in wanted:
        wanted.add("referenced_tweets.id")
    return wanted
