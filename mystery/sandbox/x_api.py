"""The X API v2 subset mystery uses, as X words it (OpenAPI v2.166 names).

Why it is strict where X is strict (``max_results`` ranges, id patterns, the 512-character search
query, duplicate content, the 800-mention horizon, undeclared or repeated query parameters and
unknown ``expansions``: :func:`~mystery.sandbox.params.check_query`) and silent where X is
lenient (unknown ``user.fields`` values): the sandbox exists to make the X channel fail here
first, not in a live study.
Both ``tweet.fields`` and its 2.167 rename ``post.fields`` are read; the 2.166 names are emitted.
Every request acts as the world's researcher (or, for a study with several accounts, the one
its token names: :meth:`~mystery.sandbox.world.World.acting`).
"""

from __future__ import annotations

from bisect import bisect_right
from datetime import datetime, timedelta
from typing import Any

from mystery.sandbox.params import (
    ID,
    bad_param,
    expansions,
    timeline_query,
    tweet_fields,
)
from mystery.sandbox.routing import Context, Route
from mystery.sandbox.spec import USERNAME
from mystery.sandbox.timeline import Query, encode_token, read_page
from mystery.sandbox.web import (
    BadBody,
    Reject,
    Request,
    Response,
    invalid_request,
    json_response,
    not_found_error,
    problem,
)
from mystery.sandbox.world import (
    Account,
    DuplicateContent,
    Post,
    UnknownPost,
    World,
)

MENTIONS_REACH = 800
"""X: only the 800 most recent mentions can be read."""
TIMELINE_REACH = 3200
"""X: only the 3,200 most recent posts of a user timeline can be read."""
SEARCH_REACH = timedelta(days=7)
SEARCH_QUERY_LIMIT = 512
"""Self-serve query length; the spec's 4,096 is the Enterprise ceiling."""
TEXT_LIMIT = 280

# -- rendering ------------------------------------------------------------------------------


def render_user(account: Account) -> dict[str, str]:
    return {"id": account.id, "name": account.name, "username": account.username}


def x_time(when: datetime) -> str:
    """``created_at`` as X sends it: whole seconds, ``.000Z`` (milliseconds are in the id)."""
    return when.isoformat()[:19] + ".000Z"


def x_text(text: str) -> str:
    """A post's text as X's v2 API returns it: ``&``, ``<`` and ``>`` as HTML entities (a
    client comparing texts must decode them; the sandbox keeps it honest about that)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render_post(post: Post, fields: frozenset[str]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": str(post.id),
        "text": x_text(post.text),
        "edit_history_tweet_ids": [str(i) for i in post.edits or (post.id,)],
    }
    if "created_at" in fields:
        out["created_at"] = x_time(post.created_at)
    if "author_id" in fields:
        out["author_id"] = post.author_id
    if "conversation_id" in fields:
        out["conversation_id"] = str(post.conversation_id)
    if "in_reply_to_user_id" in fields and post.in_reply_to_user_id is not None:
        out["in_reply_to_user_id"] = post.in_reply_to_user_id
    if "referenced_tweets" in fields and post.replied_to is not None:
        out["referenced_tweets"] = [{"type": "replied_to", "id": str(post.replied_to)}]
    return out


def _includes(world: World, posts: list[Post], wanted: set[str]) -> dict[str, Any]:
    users: dict[str, Account] = {}
    tweets: dict[int, Post] = {}
    for post in posts:
        ids = []
        if "author_id" in wanted:
            ids.append(post.author_id)
        if "in_reply_to_user_id" in wanted and post.in_reply_to_user_id:
            ids.append(post.in_reply_to_user_id)
        for user_id in ids:
            account = world.user(user_id)
            if account is not None:
                users.setdefault(user_id, account)
        if "referenced_tweets.id" in wanted and post.replied_to:
            parent = world.posts.get(post.replied_to)
            if parent is not None and world.visible(parent):
                tweets.setdefault(parent.id, parent)
    out: dict[str, Any] = {}
    if users:
        out["users"] = [render_user(a) for a in users.values()]
    if tweets:
        out["tweets"] = [
            render_post(p, frozenset({"author_id", "created_at"})) for p in tweets.values()
        ]
    return out


def posts_response(world: World, req: Request, ids: list[int], more: bool) -> Response:
    if not ids:
        return json_response(200, {"meta": {"result_count": 0}})
    posts = [world.posts[i] for i in ids]
    fields = tweet_fields(req)
    body: dict[str, Any] = {"data": [render_post(p, fields) for p in posts]}
    includes = _includes(world, posts, expansions(req))
    if includes:
        body["includes"] = includes
    meta: dict[str, Any] = {
        "newest_id": str(ids[0]),
        "oldest_id": str(ids[-1]),
        "result_count": len(ids),
    }
    if more:
        meta["next_token"] = encode_token(ids[-1])
    body["meta"] = meta
    return json_response(200, body)


def _user_param(world: World, req: Request) -> Account | Response:
    user_id = req.params["id"]
    if not ID.match(user_id):
        raise bad_param(
            f"The `id` query parameter value [{user_id}] does not match ^[0-9]{{1,19}}$",
            "id",
            user_id,
        )
    account = world.user(user_id)
    if account is None:
        return json_response(200, {"errors": [not_found_error("user", "id", user_id)]})
    return account


# -- routes ---------------------------------------------------------------------------------


def users_me(ctx: Context, req: Request) -> Response:
    return json_response(200, {"data": render_user(ctx.world.acting(req.headers.get(
        "authorization", "")))})


def user_by_id(ctx: Context, req: Request) -> Response:
    found = _user_param(ctx.world, req)
    return (
        found if isinstance(found, Response) else json_response(200, {"data": render_user(found)})
    )


def user_by_username(ctx: Context, req: Request) -> Response:
    name = req.params["username"]
    if not USERNAME.match(name):
        raise bad_param(
            f"The `username` query parameter value [{name}] does not match ^[A-Za-z0-9_]{{1,15}}$",
            "username",
            name,
        )
    account = ctx.world.user_by_name(name)
    if account is None:
        return json_response(200, {"errors": [not_found_error("user", "username", name)]})
    return json_response(200, {"data": render_user(account)})


def users_by(ctx: Context, req: Request) -> Response:
    raw = req.query.get("usernames", "")
    names = [n for n in raw.split(",") if n]
    if not names or len(names) > 100:
        raise bad_param(
            "The `usernames` query parameter needs 1 to 100 usernames", "usernames", raw
        )
    found, errors = [], []
    for name in names:
        if not USERNAME.match(name):
            raise bad_param(
                f"The `usernames` query parameter value [{name}] does not match "
                "^[A-Za-z0-9_]{1,15}$",
                "usernames",
                name,
            )
        account = ctx.world.user_by_name(name)
        if account is None:
            errors.append(not_found_error("user", "username", name))
        else:
            found.append(render_user(account))
    body: dict[str, Any] = {}
    if found:
        body["data"] = found
    if errors:
        body["errors"] = errors
    return json_response(200, body)


def _create_body(req: Request) -> tuple[str, int | None]:
    try:
        body = req.json()
    except BadBody as exc:
        raise Reject(invalid_request(str(exc), {"body": []})) from None
    unknown = sorted(set(body) - {"text", "reply"})
    if unknown:
        raise Reject(
            invalid_request(
                f"$.{unknown[0]}: the sandbox supports only text and reply", {unknown[0]: []}
            )
        )
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        raise Reject(invalid_request("$.text: is missing but it is required", {"text": []}))
    reply = body.get("reply")
    if reply is None:
        return text, None
    parent = reply.get("in_reply_to_tweet_id") if isinstance(reply, dict) else None
    if not isinstance(parent, str) or not ID.match(parent):
        raise Reject(
            invalid_request(
                "$.reply.in_reply_to_tweet_id: is missing but it is required",
                {"$.reply": [str(reply)]},
            )
        )
    return text, int(parent)


def create_tweet(ctx: Context, req: Request) -> Response:
    text, parent = _create_body(req)
    if len(text) > TEXT_LIMIT:
        return problem(403, "Forbidden", "Your Tweet text is too long.")
    world = ctx.world
    try:
        post = world.create_post(world.acting(req.headers.get("authorization", "")).id, text,
                                 parent)
    except DuplicateContent as exc:
        return problem(403, "Forbidden", str(exc))
    except UnknownPost:
        return problem(
            403,
            "Forbidden",
            "You attempted to reply to a Tweet that is deleted or not visible to you.",
        )
    host = req.headers.get("host", "127.0.0.1")
    return json_response(
        201,
        {
            "data": {
                "id": str(post.id),
                "text": x_text(post.text),
                "edit_history_tweet_ids": [str(post.id)],
            }
        },
        {"location": f"http://{host}/2/tweets/{post.id}"},
    )


def user_mentions(ctx: Context, req: Request) -> Response:
    world = ctx.world
    found = _user_param(world, req)
    if isinstance(found, Response):
        return found
    query = timeline_query(
        req, world, low=5, high=100, token_names=("pagination_token",), cap=MENTIONS_REACH
    )
    mentions = world.mentions_of.get(found.id, [])
    if ctx.quirks.mentions_beyond_reach == "empty" and _beyond_reach(mentions, query):
        return json_response(200, {"meta": {"result_count": 0}})
    ids, more = read_page(mentions, query)
    return posts_response(world, req, ids, more)


def _beyond_reach(ids: list[int], query: Query) -> bool:
    """Whether some post newer than ``since_id`` lies beyond the reachable newest ``cap``."""
    assert query.cap is not None
    unreachable = bisect_right(ids, query.ceiling) - query.cap
    return unreachable > 0 and ids[unreachable - 1] > query.after > 0


def user_tweets(ctx: Context, req: Request) -> Response:
    world = ctx.world
    found = _user_param(world, req)
    if isinstance(found, Response):
        return found
    exclude = set(filter(None, req.query.get("exclude", "").split(",")))
    if exclude - {"replies", "retweets"}:
        raise bad_param(
            "The `exclude` query parameter takes replies and retweets",
            "exclude",
            ",".join(sorted(exclude)),
        )
    keep = (lambda i: world.posts[i].replied_to is None) if "replies" in exclude else None
    query = timeline_query(
        req,
        world,
        low=5,
        high=100,
        token_names=("pagination_token",),
        cap=TIMELINE_REACH,
        keep=keep,
    )
    ids, more = read_page(world.by_author.get(found.id, []), query)
    return posts_response(world, req, ids, more)


def tweet_by_id(ctx: Context, req: Request) -> Response:
    return _lookup(ctx.world, req, [req.params["id"]], single=True)


def tweets_by_ids(ctx: Context, req: Request) -> Response:
    raw = req.query.get("ids", "")
    ids = [i for i in raw.split(",") if i]
    if not ids or len(ids) > 100:
        raise bad_param("The `ids` query parameter needs 1 to 100 ids", "ids", raw)
    return _lookup(ctx.world, req, ids, single=False)


def _lookup(world: World, req: Request, ids: list[str], single: bool) -> Response:
    fields = tweet_fields(req)
    found, errors = [], []
    for raw in ids:
        if not ID.match(raw):
            raise bad_param(
                f"The `id` query parameter value [{raw}] does not match ^[0-9]{{1,19}}$", "id", raw
            )
        post = world.posts.get(int(raw))
        if post is None or not world.visible(post):
            errors.append(not_found_error("tweet", "id", raw))
        else:
            found.append(post)
    body: dict[str, Any] = {}
    if found:
        body["data"] = (
            render_post(found[0], fields) if single else [render_post(p, fields) for p in found]
        )
        includes = _includes(world, found, expansions(req))
        if includes:
            body["includes"] = includes
    if errors:
        body["errors"] = errors
    return json_response(200, body)


ROUTES = [
    Route("GET", "/2/users/me", users_me),
    Route("GET", "/2/users/by/username/:username", user_by_username),
    Route("GET", "/2/users/by", users_by),
    Route("GET", "/2/users/:id/mentions", user_mentions),
    Route("GET", "/2/users/:id/tweets", user_tweets),
    Route("GET", "/2/users/:id", user_by_id),
    Route("POST", "/2/tweets", create_tweet),
    Route("GET", "/2/tweets", tweets_by_ids),
    Route("GET", "/2/tweets/:id", tweet_by_id),
]
"""Search lives in :mod:`mystery.sandbox.search`; it is added after these by the app."""
