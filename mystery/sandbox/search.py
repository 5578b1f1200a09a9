"""``GET /2/tweets/search/recent``: just the operators a channel needs to find a thread.

Why so few: the X channel searches ``conversation_id:<probe> from:<brand>`` to catch replies that
dropped the researcher's handle. Anything else is refused with a 400 that names the operators the
sandbox understands, rather than silently matching nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from mystery.sandbox.params import bad_param, time_param, timeline_query
from mystery.sandbox.routing import Context, Route
from mystery.sandbox.timeline import read_page
from mystery.sandbox.web import Reject, Request, Response, invalid_request
from mystery.sandbox.world import Post, World, first_id_at
from mystery.sandbox.x_api import SEARCH_QUERY_LIMIT, SEARCH_REACH, posts_response

_TERM = re.compile(r"^(-?)(conversation_id|from|to|is):(\S+)$")
_KINDS = ("reply", "retweet", "quote")


@dataclass
class Terms:
    """A parsed query: every term must hold (X's implicit AND)."""

    conversations: list[int] = field(default_factory=list)
    authors: list[str | None] = field(default_factory=list)
    recipients: list[str | None] = field(default_factory=list)
    kinds: dict[str, bool] = field(default_factory=dict)

    def matches(self, post: Post) -> bool:
        if any(post.conversation_id != c for c in self.conversations):
            return False
        if any(post.author_id != a for a in self.authors):
            return False
        if any(post.in_reply_to_user_id != r for r in self.recipients):
            return False
        facts = {"reply": post.replied_to is not None, "retweet": False, "quote": False}
        return all(facts[kind] == wanted for kind, wanted in self.kinds.items())


def _unsupported(term: str) -> Reject:
    return Reject(
        invalid_request(
            f"The sandbox's search understands only conversation_id:, from:, to: and is:reply "
            f"(optionally negated with -), not [{term}]",
            {"query": [term]},
        )
    )


def parse_query(world: World, text: str) -> Terms:
    """Parse the query; a user given by name or id that does not exist matches nothing."""
    terms = Terms()
    for term in text.split():
        match = _TERM.match(term)
        if match is None:
            raise _unsupported(term)
        negated, operator, value = match.groups()
        if operator == "is" and value in _KINDS:
            terms.kinds[value] = not negated
            continue
        if negated or operator == "is":
            raise _unsupported(term)
        if operator == "conversation_id":
            if not value.isdigit():
                raise _unsupported(term)
            terms.conversations.append(int(value))
            continue
        account = world.user(value) if value.isdigit() else world.user_by_name(value)
        user_id = account.id if account is not None else None
        (terms.authors if operator == "from" else terms.recipients).append(user_id)
    return terms


def search_recent(ctx: Context, req: Request) -> Response:
    world = ctx.world
    text = req.query.get("query", "")
    if not text.strip():
        raise bad_param("The `query` query parameter can not be empty", "query", text)
    if len(text) > SEARCH_QUERY_LIMIT:
        raise bad_param(
            f"The `query` query parameter value is {len(text)} characters long; "
            f"the limit is {SEARCH_QUERY_LIMIT}",
            "query",
            text[:40],
        )
    terms = parse_query(world, text)
    horizon = world.now() - SEARCH_REACH
    start = time_param(req, "start_time")
    if start is not None and start < horizon.replace(microsecond=0):
        raise bad_param(
            f"Invalid 'start_time':'{req.query['start_time']}'. 'start_time' must "
            f"be on or after {horizon:%Y-%m-%dT%H:%M}Z",
            "start_time",
            str(start),
        )

    def keep(post_id: int) -> bool:
        return terms.matches(world.posts[post_id])

    query = timeline_query(
        req,
        world,
        low=10,
        high=100,
        token_names=("next_token", "pagination_token"),
        cap=None,
        keep=keep,
    )
    query = replace(query, after=max(query.after, first_id_at(horizon) - 1))
    if terms.conversations:
        candidates = world.by_conversation.get(terms.conversations[0], [])
    elif terms.authors:
        candidates = world.by_author.get(terms.authors[0] or "", [])
    else:
        candidates = world.all_ids
    ids, more = read_page(candidates, query)
    return posts_response(world, req, ids, more)


ROUTES = [Route("GET", "/2/tweets/search/recent", search_recent)]
