"""The Mastodon REST API subset mystery uses, as Mastodon words it (research/platforms.md §3, §8).

Why these details are emulated rather than simplified: each one is something the Mastodon
channel must get right against a real instance. ``Idempotency-Key`` replays the first status
(never send twice); notifications page with ``max_id``/``since_id``/``min_id`` and a ``Link``
header, newest first, ``min_id`` walking forward from a cursor; ``content`` is sanitised HTML in
which a remote mention shows only ``@user``; ``acct`` is ``user`` for local accounts and
``user@domain`` for remote ones; ``created_at`` carries milliseconds (the time mystery records);
rate limits come as ``X-RateLimit-*`` with an ISO 8601 reset; errors as ``{"error": "..."}``;
``/api/v1/instance`` and ``/api/v2/instance`` say which release this is (4.3.0), because other
clients (Mastodon.py) decide what to send by it; as in Rails, a trailing slash changes nothing.

A request acts as the researcher account its bearer token names (``sandbox:<account>``, what
mystery's channel sends in the sandbox), as a token on an instance belongs to one account; any
other token acts as the world's researcher. Each account posts as itself, keeps its own
``Idempotency-Key`` namespace (Mastodon scopes keys per account) and reads only its own
notifications.
"""

from __future__ import annotations

import html
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode

from mystery.clock import iso
from mystery.sandbox.network import MENTION, Member, Network, Note
from mystery.sandbox.platform import Api, ApiRoute, Limit, body_fields, query_all
from mystery.sandbox.routing import Context
from mystery.sandbox.web import BadBody, Reject, Request, Response, json_response

TEXT_LIMIT = 500
IDEMPOTENCY_TTL = timedelta(hours=1)
VISIBILITIES = ("public", "unlisted", "private", "direct")
_MENTION_KEYS = ("id", "username", "acct", "url")

_MESSAGES = {
    401: "The access token is invalid",
    403: "This action is not allowed",
    404: "Record not found",
    405: "Method not allowed",
    422: "Validation failed",
    429: "Too many requests",
    500: "We're sorry, but something went wrong on our end.",
    503: "Service Unavailable",
}


class MastodonApi(Api):
    name = "mastodon"

    def error(self, status: int, message: str | None = None) -> Response:
        return json_response(status, {"error": message or _MESSAGES.get(status, "Error")})

    def rate_headers(self, limit: Limit, now: datetime, limited: bool) -> dict[str, str]:
        reset = datetime.fromtimestamp(limit.reset, tz=now.tzinfo)
        return {
            "X-RateLimit-Limit": str(limit.limit),
            "X-RateLimit-Remaining": str(limit.remaining),
            "X-RateLimit-Reset": reset.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        }

    def authorise(self, ctx: Context, req: Request) -> Response | None:
        scheme, _, token = req.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return self.error(401)
        return None


API = MastodonApi()


def _net(ctx: Context) -> Network:
    net: Network = ctx.world.network("mastodon")
    return net


def acting(net: Network, req: Request) -> Member:
    """The researcher account ``req`` acts as: the one its token names, else the researcher."""
    _, _, token = req.headers.get("authorization", "").partition(" ")
    prefix, _, name = token.strip().partition(":")
    return net.acting(name if prefix == "sandbox" else "")


# -- rendering ------------------------------------------------------------------------------


def render_account(net: Network, member: Member) -> dict[str, Any]:
    user, _, domain = member.handle.partition("@")
    return {
        "id": member.id,
        "username": user,
        "acct": user if domain == net.domain else member.handle,
        "display_name": member.name,
        "url": f"https://{domain}/@{user}",
        "bot": False,
        "locked": False,
        "group": False,
    }


def content_html(net: Network, text: str, mentioned: set[str]) -> str:
    """The text as Mastodon renders it: escaped, mentions as h-cards showing only ``@user``."""
    out, last = [], 0
    for found in MENTION.finditer(text):
        member = net.member(found.group(1))
        if member is None or member.id not in mentioned:
            continue
        user, _, domain = member.handle.partition("@")
        out.append(html.escape(text[last : found.start()], quote=False))
        out.append(
            f'<span class="h-card" translate="no"><a href="https://{domain}/@{user}" '
            f'class="u-url mention">@<span>{html.escape(user)}</span></a></span>'
        )
        last = found.end()
    out.append(html.escape(text[last:], quote=False))
    paragraphs = "".join(out).split("\n\n")
    return "".join(f"<p>{p.replace(chr(10), '<br />')}</p>" for p in paragraphs)


def render_status(net: Network, note: Note) -> dict[str, Any]:
    parent = net.notes.get(note.parent) if note.parent is not None else None
    user, _, domain = note.author.handle.partition("@")
    mentions = [net.members[m] for m in note.mentions]
    return {
        "id": str(note.key),
        "created_at": iso(note.created_at),
        "in_reply_to_id": str(parent.key) if parent else None,
        "in_reply_to_account_id": parent.author.id if parent else None,
        "sensitive": False,
        "spoiler_text": "",
        "visibility": note.extra.get("visibility", "public"),
        "language": "en",
        "uri": f"https://{domain}/users/{user}/statuses/{note.key}",
        "url": f"https://{domain}/@{user}/{note.key}",
        "replies_count": 0,
        "reblogs_count": 0,
        "favourites_count": 0,
        "edited_at": None,
        "content": content_html(net, note.text, set(note.mentions)),
        "reblog": None,
        "account": render_account(net, note.author),
        "media_attachments": [],
        "mentions": [
            {k: v for k, v in render_account(net, m).items() if k in _MENTION_KEYS}
            for m in mentions
        ],
        "tags": [],
        "emojis": [],
        "card": None,
        "poll": None,
    }


# -- paging ---------------------------------------------------------------------------------


def _id(req: Request, name: str) -> int | None:
    value = req.query.get(name)
    if value is None or value == "":
        return None
    if not value.isdigit():
        raise Reject(API.error(422, f"Validation failed: {name} must be an id"))
    return int(value)


def page(
    req: Request,
    keys: Sequence[int],
    ceiling: int,
    *,
    default: int,
    maximum: int,
    keep: Callable[[int], bool] | None = None,
) -> list[int]:
    """A page of ``keys`` (ascending), newest first, as Mastodon's ``paginate_by_id`` reads
    ``max_id`` (older than), ``since_id`` (newer than, newest page) and ``min_id`` (the page
    immediately newer than)."""
    raw = req.query.get("limit", "")
    limit = min(int(raw), maximum) if raw.isdigit() and int(raw) > 0 else default
    max_id, since_id, min_id = _id(req, "max_id"), _id(req, "since_id"), _id(req, "min_id")
    hi = bisect_right(keys, ceiling)
    if max_id is not None:
        hi = min(hi, bisect_left(keys, max_id))
    out: list[int] = []
    if min_id is not None:
        i = bisect_right(keys, min_id)
        while i < hi and len(out) < limit:
            if keep is None or keep(keys[i]):
                out.append(keys[i])
            i += 1
        return out[::-1]
    lo = bisect_right(keys, since_id) if since_id is not None else 0
    i = hi - 1
    while i >= lo and len(out) < limit:
        if keep is None or keep(keys[i]):
            out.append(keys[i])
        i -= 1
    return out


def paged(req: Request, items: list[Any], keys: list[int]) -> Response:
    """``items`` with the ``Link`` header Mastodon sends: ``next`` (older), ``prev`` (newer)."""
    response = json_response(200, items)
    if keys:
        host = req.headers.get("host", "127.0.0.1")
        kept = [
            (k, v)
            for k, v in parse_qsl(req.query_string, keep_blank_values=True)
            if k not in ("max_id", "min_id", "since_id")
        ]
        base = f"http://{host}{req.path}?"
        older = urlencode([*kept, ("max_id", str(keys[-1]))])
        newer = urlencode([*kept, ("min_id", str(keys[0]))])
        response.headers["Link"] = f'<{base}{older}>; rel="next", <{base}{newer}>; rel="prev"'
    return response


# -- routes ---------------------------------------------------------------------------------


def verify_credentials(ctx: Context, req: Request) -> Response:
    net = _net(ctx)
    account = render_account(net, acting(net, req))
    account["source"] = {"privacy": "public", "sensitive": False, "note": ""}
    return json_response(200, account)


VERSION = "4.3.0"
"""The Mastodon release the sandbox answers as. Clients branch on it: Mastodon.py reads
``version`` from ``/api/v1/instance`` before any call that differs between releases (and,
without an answer, asks again and again until Python's recursion limit), and from 4.3 on expects
``api_versions`` in ``/api/v2/instance``."""
API_VERSION = 2
"""``api_versions.mastodon`` of Mastodon 4.3."""


def _limits() -> dict[str, Any]:
    return {
        "statuses": {
            "max_characters": TEXT_LIMIT,
            "max_media_attachments": 4,
            "characters_reserved_per_url": 23,
        },
        "media_attachments": {
            "supported_mime_types": ["image/jpeg", "image/png"],
            "image_size_limit": 16777216,
            "image_matrix_limit": 33177600,
            "video_size_limit": 103809024,
            "video_frame_rate_limit": 120,
            "video_matrix_limit": 8294400,
        },
        "polls": {
            "max_options": 4,
            "max_characters_per_option": 50,
            "min_expiration": 300,
            "max_expiration": 2629746,
        },
    }


def instance_v1(ctx: Context, req: Request) -> Response:
    """``GET /api/v1/instance``: deprecated since 4.0 but still served by every 4.x, and the
    one Mastodon.py asks for the version."""
    net = _net(ctx)
    host = req.headers.get("host", "127.0.0.1")
    return json_response(
        200,
        {
            "uri": net.domain,
            "title": "mystery sandbox",
            "short_description": "A simulated Mastodon instance for mystery studies.",
            "description": "A simulated Mastodon instance for mystery studies.",
            "email": "",
            "version": VERSION,
            "urls": {"streaming_api": f"ws://{host}"},
            "stats": {
                "user_count": len(net.members),
                "status_count": len(net.notes),
                "domain_count": 1,
            },
            "thumbnail": None,
            "languages": ["en"],
            "registrations": False,
            "approval_required": False,
            "invites_enabled": False,
            "configuration": {"accounts": {"max_featured_tags": 10}, **_limits()},
            "contact_account": None,
            "rules": [],
        },
    )


def instance(ctx: Context, req: Request) -> Response:
    """``GET /api/v2/instance``, the shape of Mastodon 4.3."""
    net = _net(ctx)
    host = req.headers.get("host", "127.0.0.1")
    return json_response(
        200,
        {
            "domain": net.domain,
            "title": "mystery sandbox",
            "version": VERSION,
            "source_url": "https://github.com/mastodon/mastodon",
            "description": "A simulated Mastodon instance for mystery studies.",
            "usage": {"users": {"active_month": len(net.members)}},
            "thumbnail": {"url": f"http://{host}/favicon.png"},
            "icon": [],
            "languages": ["en"],
            "configuration": {
                "urls": {"streaming": f"ws://{host}", "status": None},
                "vapid": {"public_key": ""},
                "accounts": {"max_featured_tags": 10, "max_pinned_statuses": 5},
                **_limits(),
                "translation": {"enabled": False},
            },
            "registrations": {"enabled": False, "approval_required": False, "message": None},
            "api_versions": {"mastodon": API_VERSION},
            "contact": {"email": "", "account": None},
            "rules": [],
        },
    )


def search(ctx: Context, req: Request) -> Response:
    net = _net(ctx)
    query = req.query.get("q", "").strip()
    kind = req.query.get("type")
    found = net.member(query) if query and kind in (None, "", "accounts") else None
    accounts = [render_account(net, found)] if found is not None else []
    return json_response(200, {"accounts": accounts, "statuses": [], "hashtags": []})


def lookup(ctx: Context, req: Request) -> Response:
    net = _net(ctx)
    found = net.member(req.query.get("acct", ""))
    if found is None:
        return API.error(404)
    return json_response(200, render_account(net, found))


def account_statuses(ctx: Context, req: Request) -> Response:
    net = _net(ctx)
    member = net.members.get(req.params["id"])
    if member is None:
        return API.error(404)
    no_replies = req.query.get("exclude_replies", "").lower() in ("true", "1")
    keep = (lambda k: net.notes[k].parent is None) if no_replies else None
    keys = page(
        req, net.by_author.get(member.id, []), net.ceiling(), default=20, maximum=40, keep=keep
    )
    return paged(req, [render_status(net, net.notes[k]) for k in keys], keys)


def _status(net: Network, raw: str) -> Note:
    note = net.note(int(raw)) if raw.isdigit() else None
    if note is None:
        raise Reject(API.error(404))
    return note


def get_status(ctx: Context, req: Request) -> Response:
    net = _net(ctx)
    return json_response(200, render_status(net, _status(net, req.params["id"])))


def context(ctx: Context, req: Request) -> Response:
    """Ancestors oldest first, then the visible descendants in thread order."""
    net = _net(ctx)
    note = _status(net, req.params["id"])
    ancestors = []
    key = note.parent
    while key is not None:
        ancestors.append(net.notes[key])
        key = net.notes[key].parent
    below = {note.key}
    descendants = []
    for key in sorted(k for k, n in net.notes.items() if n.root == note.thread):
        child = net.notes[key]
        if child.parent in below and net.visible(key):
            below.add(key)
            descendants.append(child)
    return json_response(
        200,
        {
            "ancestors": [render_status(net, n) for n in reversed(ancestors)],
            "descendants": [render_status(net, n) for n in descendants],
        },
    )


def publish_status(net: Network, text: str, parent: Note | None, visibility: str,
                   author: Member | None = None) -> Note:
    """A researcher account's status (``author``, by default the researcher), as
    ``POST /api/v1/statuses`` makes it once the request is checked; also how a rebuilt world
    posts it again (:mod:`mystery.sandbox.replay`)."""
    mentioned = [m for m in (net.member(a) for a in MENTION.findall(text)) if m is not None]
    return net.post(author or net.researcher, text, mentioned, parent,
                    {"visibility": visibility})


def create_status(ctx: Context, req: Request) -> Response:
    net = _net(ctx)
    try:
        fields = body_fields(req)
    except BadBody as exc:
        return API.error(400, str(exc))
    me = acting(net, req)
    # Keys are the account's own: another account's status is never replayed to it.
    key = (me.id, req.headers["idempotency-key"]) if req.headers.get("idempotency-key") else None
    now = net.clock.now()
    remembered = net.state.setdefault("idempotency", {})
    if key and key in remembered and remembered[key][1] > now:
        return json_response(200, render_status(net, net.notes[remembered[key][0]]))
    text = fields.get("status")
    if not isinstance(text, str) or not text.strip():
        return API.error(422, "Validation failed: Text can't be blank")
    if len(text) > TEXT_LIMIT:
        return API.error(422, f"Validation failed: Text character limit of {TEXT_LIMIT} exceeded")
    visibility = fields.get("visibility") or "public"
    if visibility not in VISIBILITIES:
        return API.error(422, "Validation failed: Visibility is not included in the list")
    if fields.get("scheduled_at"):
        return API.error(422, "Validation failed: the sandbox does not schedule statuses")
    parent = _status(net, str(fields["in_reply_to_id"])) if fields.get("in_reply_to_id") else None
    note = publish_status(net, text, parent, visibility, me)
    if key:
        remembered[key] = (note.key, now + IDEMPOTENCY_TTL)
    return json_response(200, render_status(net, note))


def notifications(ctx: Context, req: Request) -> Response:
    net = _net(ctx)
    types = set(query_all(req, "types[]"))
    excluded = set(query_all(req, "exclude_types[]"))
    account = req.query.get("account_id")

    def keep(key: int) -> bool:
        found = net.notifications[key]
        kind = "mention" if found.reason in ("mention", "reply") else found.reason
        note = net.notes[found.note]
        return (
            (not types or kind in types)
            and kind not in excluded
            and (account is None or note.author.id == account)
        )

    inbox = net.inbox(acting(net, req))
    keys = page(req, inbox, net.ceiling(), default=40, maximum=80, keep=keep)
    items = []
    for key in keys:
        found = net.notifications[key]
        note = net.notes[found.note]
        items.append(
            {
                "id": str(key),
                "type": "mention",
                "group_key": f"ungrouped-{key}",
                "created_at": iso(note.created_at),
                "account": render_account(net, note.author),
                "status": render_status(net, note),
            }
        )
    return paged(req, items, keys)


def notification_policy(ctx: Context, req: Request) -> Response:
    _net(ctx)
    return json_response(
        200,
        {
            "for_not_following": "accept",
            "for_not_followers": "accept",
            "for_new_accounts": "accept",
            "for_private_mentions": "filter",
            "for_limited_accounts": "filter",
            "summary": {"pending_requests_count": 0, "pending_notifications_count": 0},
        },
    )


def _route(method: str, template: str, handler: Any, auth: bool = True) -> ApiRoute:
    return ApiRoute(method, template, handler, x=False, api=API, auth=auth)


ROUTES = [
    _route("GET", "/api/v1/accounts/verify_credentials", verify_credentials),
    _route("GET", "/api/v1/accounts/lookup", lookup),
    _route("GET", "/api/v1/accounts/:id/statuses", account_statuses),
    _route("GET", "/api/v1/instance", instance_v1, auth=False),  # public, as on any instance
    _route("GET", "/api/v2/instance", instance, auth=False),
    _route("GET", "/api/v2/search", search),
    _route("POST", "/api/v1/statuses", create_status),
    _route("GET", "/api/v1/statuses/:id", get_status),
    _route("GET", "/api/v1/statuses/:id/context", context),
    _route("GET", "/api/v1/notifications", notifications),
    _route("GET", "/api/v2/notifications/policy", notification_policy),
]
