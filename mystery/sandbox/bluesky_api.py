"""The Bluesky (AT Protocol XRPC) subset mystery uses, as the PDS and AppView word it
(research/platforms.md §4, §8).

Why these details are emulated: each is something the Bluesky channel must get right live.

- **Sessions**: ``createSession`` is capped (30 per 5 minutes per account), access tokens expire
  after two
  hours of *virtual* time (``400 ExpiredToken``) and ``refreshSession`` rotates the pair, so a
  seven-day sandbox study proves the channel refreshes instead of logging in again. The tokens
  are JWTs with the reference PDS's claims (see :func:`session_jwt`): SDKs read them.
- **Accounts**: each researcher account of a team study logs in as itself (any password), and
  its session acts as it: it writes only to its own repo (another's is ``401
  AuthRequiredError``, as the PDS answers) and lists only its own notifications.
- **Mentions are facets**: a post notifies a brand only through a mention facet carrying its
  DID; the facet's byte range must cover ``@handle`` in UTF-8 *bytes* (stricter than the PDS,
  which does not look: a wrong offset only shows up as a broken link in the app).
- **Record keys**: a create at an existing ``rkey`` fails as the reference PDS fails (the
  repository's tree refuses a second value at a key: ``500 InternalServerError``), so a retried
  probe with the same key can never become a second post.
- **Time**: ``indexedAt`` is the virtual time the post was seen; a brand's client claims a
  ``createdAt`` a little ahead of it (clocks differ), so a client timing by ``createdAt`` is off.
  The real AppView reports ``indexedAt`` as the earlier of the two (its ``sortAt``); here the
  claim is never earlier, so both readings agree.
- **Notifications**: newest first, an opaque ``cursor`` to older pages, ``reasons`` filter; a
  reply that also mentions the researcher arrives once, as ``mention`` (mentions win the dedup).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from datetime import datetime, timedelta
from typing import Any

from mystery.clock import iso, parse_iso
from mystery.sandbox.bluesky_records import (
    POST,
    TID_CHARS,
    FacetError,
    check_facets,
    cid_of,
    find,
    post_view,
    profile,
    publish,
    tid,
    uri_of,
)
from mystery.sandbox.network import Member, Network, Note, digest32
from mystery.sandbox.platform import Api, ApiRoute, Limit, query_all
from mystery.sandbox.routing import Context
from mystery.sandbox.web import BadBody, Reject, Request, Response, json_response

ACCESS_TTL = timedelta(hours=2)
REFRESH_TTL = timedelta(days=90)
LOGIN_WINDOW = timedelta(minutes=5)
LOGINS_PER_WINDOW = 30
TEXT_GRAPHEMES = 300
TEXT_BYTES = 3000

_NAMES = {
    400: "InvalidRequest",
    401: "AuthMissing",
    403: "Forbidden",
    404: "NotFound",
    405: "InvalidRequest",
    429: "RateLimitExceeded",
    500: "InternalServerError",
    501: "MethodNotImplemented",
    502: "UpstreamFailure",
    503: "NotEnoughResources",
    504: "UpstreamTimeout",
}
_TEXTS = {
    401: "Authentication Required",
    429: "Rate Limit Exceeded",
    500: "Internal Server Error",
    501: "Method Not Implemented",
}


def xrpc_error(status: int, name: str | None = None, message: str | None = None) -> Response:
    """``{"error": "<Name>", "message": "<text>"}``, the shape of every XRPC error."""
    name = name or _NAMES.get(status, "InternalServerError")
    return json_response(status, {"error": name, "message": message or _TEXTS.get(status, name)})


class BlueskyApi(Api):
    name = "bluesky"

    def error(self, status: int, message: str | None = None) -> Response:
        return xrpc_error(status, None, message)

    def rate_headers(self, limit: Limit, now: datetime, limited: bool) -> dict[str, str]:
        headers = {
            "RateLimit-Limit": str(limit.limit),
            "RateLimit-Remaining": str(limit.remaining),
            "RateLimit-Reset": str(limit.reset),
            "RateLimit-Policy": f"{limit.limit};w=900",
        }
        if limited:
            headers["Retry-After"] = str(max(0, limit.reset - int(now.timestamp())))
        return headers

    def authorise(self, ctx: Context, req: Request) -> Response | None:
        net = ctx.world.network("bluesky")
        return _check_token(net, req, "access")

    def not_found(self, method: str, path: str, other_method: bool) -> Response:
        if other_method:
            return xrpc_error(400, "InvalidRequest", f"Incorrect HTTP method ({method})")
        return xrpc_error(501)


API = BlueskyApi()


def _net(ctx: Context) -> Network:
    net: Network = ctx.world.network("bluesky")
    return net


# -- sessions -------------------------------------------------------------------------------


def _check_token(net: Network, req: Request, kind: str) -> Response | None:
    scheme, _, token = req.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return xrpc_error(401, "AuthMissing", "Authentication Required")
    found = net.state.setdefault("tokens", {}).get(token.strip())
    if found is None:
        return xrpc_error(400, "InvalidToken", "Token could not be verified")
    if found[0] != kind:
        return xrpc_error(400, "InvalidToken", "Invalid token type")
    if found[1] <= net.clock.now():
        return xrpc_error(400, "ExpiredToken", "Token has expired")
    return None


def viewer(net: Network, req: Request) -> Member:
    """The researcher account whose session ``req``'s token belongs to (a route with ``auth``
    has checked the token already)."""
    token = req.headers.get("authorization", "").partition(" ")[2].strip()
    found = net.state.get("tokens", {}).get(token)
    member = net.team.get(found[2]) if found is not None else None
    return member if member is not None else net.researcher


_SIGNING_KEY = secrets.token_bytes(32)
"""Signs the sandbox's session JWTs (HS256). New in every process: nothing outside the sandbox
verifies them, and the sandbox itself knows its live tokens by value (``tokens``)."""
ACCESS_SCOPE = "com.atproto.appPass"
"""What the reference PDS writes into the access token of an app-password session (the kind of
login a researcher's tool uses); the refresh token's scope is ``com.atproto.refresh``."""


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def session_jwt(typ: str, claims: dict[str, Any]) -> str:
    """A compact JWS, as the reference PDS issues for sessions (``at+jwt`` and ``refresh+jwt``).

    Why JWTs and not opaque strings: the PDS always issues JWTs and the SDKs decode them, without
    verifying the signature, to read ``exp`` and refresh ahead of it (the atproto SDK refuses to
    log in otherwise). ``iat`` and ``exp`` are on the virtual clock, like every time the sandbox
    states, so they agree with when the sandbox answers ``ExpiredToken``. A client comparing
    ``exp`` with its own wall clock while the virtual clock lags refreshes early, which is safe.
    Built with the standard library (HMAC-SHA256): no runtime dependency for a test double.
    """
    header = _b64url(json.dumps({"typ": typ, "alg": "HS256"}, separators=(",", ":")).encode())
    payload = _b64url(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{header}.{payload}"
    signature = hmac.new(_SIGNING_KEY, signing_input.encode("ascii"), hashlib.sha256).digest()
    return f"{signing_input}.{_b64url(signature)}"


def _service_did(req: Request) -> str:
    """The PDS's own DID, the tokens' audience: ``did:web`` of the host it was reached at."""
    return "did:web:" + req.headers.get("host", "127.0.0.1").replace(":", "%3A")


def _session(net: Network, req: Request, me: Member) -> dict[str, Any]:
    """A fresh token pair for ``me``, remembered with its kind, expiry and account (rotation
    revokes by value)."""
    tokens = net.state.setdefault("tokens", {})
    serial = net.state["serial"] = net.state.get("serial", 0) + 1
    now = net.clock.now()
    common = {"sub": me.id, "aud": _service_did(req), "iat": int(now.timestamp())}
    access = session_jwt(
        "at+jwt",
        {
            "scope": ACCESS_SCOPE,
            **common,
            "exp": int((now + ACCESS_TTL).timestamp()),
            "jti": f"access-{serial}",
        },
    )
    refresh = session_jwt(
        "refresh+jwt",
        {
            "scope": "com.atproto.refresh",
            **common,
            "exp": int((now + REFRESH_TTL).timestamp()),
            "jti": f"refresh-{serial}",
        },
    )
    tokens[access] = ("access", now + ACCESS_TTL, me.id)
    tokens[refresh] = ("refresh", now + REFRESH_TTL, me.id)
    endpoint = f"http://{req.headers.get('host', '127.0.0.1')}"
    return {
        "accessJwt": access,
        "refreshJwt": refresh,
        "handle": me.handle,
        "did": me.id,
        "didDoc": {
            "id": me.id,
            "alsoKnownAs": [f"at://{me.handle}"],
            "service": [
                {
                    "id": "#atproto_pds",
                    "type": "AtprotoPersonalDataServer",
                    "serviceEndpoint": endpoint,
                }
            ],
        },
        "active": True,
    }


def _account(net: Network, identifier: str) -> Member | None:
    """The researcher account a login names, by handle or DID."""
    wanted = identifier.strip().lstrip("@").casefold()
    return next((m for m in net.team.values()
                 if wanted in (m.handle.casefold(), m.id.casefold())), None)


def create_session(ctx: Context, req: Request) -> Response:
    net = _net(ctx)
    body = _body(req)
    now = net.clock.now()
    identifier = str(body.get("identifier", "")).strip().lstrip("@").casefold()
    me = _account(net, identifier)
    # The cap is the account's (research/platforms.md §4.1): one researcher's logins never
    # lock out another's.
    who = me.id if me is not None else identifier
    window = net.state.setdefault("logins", {})
    logins = [t for t in window.get(who, []) if t > now - LOGIN_WINDOW]
    if len(logins) >= LOGINS_PER_WINDOW:
        response = xrpc_error(429, "RateLimitExceeded", "Rate Limit Exceeded")
        reset = min(logins) + LOGIN_WINDOW
        response.headers.update(
            {
                "RateLimit-Limit": str(LOGINS_PER_WINDOW),
                "RateLimit-Remaining": "0",
                "RateLimit-Reset": str(int(reset.timestamp())),
                "RateLimit-Policy": f"{LOGINS_PER_WINDOW};w=300",
                "Retry-After": str(max(0, int((reset - now).total_seconds()))),
            }
        )
        return response
    window[who] = [*logins, now]
    if me is None or not body.get("password"):
        return xrpc_error(401, "AuthenticationRequired", "Invalid identifier or password")
    return json_response(200, _session(net, req, me))


def refresh_session(ctx: Context, req: Request) -> Response:
    net = _net(ctx)
    denied = _check_token(net, req, "refresh")
    if denied is not None:
        return denied
    me = viewer(net, req)
    net.state["tokens"].pop(req.headers["authorization"].partition(" ")[2].strip())
    return json_response(200, _session(net, req, me))


def resolve_handle(ctx: Context, req: Request) -> Response:
    net = _net(ctx)
    member = net.member(req.query.get("handle", ""))
    if member is None:
        return xrpc_error(400, "InvalidRequest", "Unable to resolve handle")
    return json_response(200, {"did": member.id})


# -- records and views ----------------------------------------------------------------------


def _body(req: Request) -> dict[str, Any]:
    try:
        return req.json()
    except BadBody as exc:
        raise Reject(xrpc_error(400, "InvalidRequest", str(exc))) from None


def _limit(req: Request, default: int = 50) -> int:
    raw = req.query.get("limit")
    if raw is None:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= 100:
        raise Reject(xrpc_error(400, "InvalidRequest", "limit must be between 1 and 100"))
    return int(raw)


def _cursor(req: Request) -> int | None:
    raw = req.query.get("cursor")
    if raw is None or raw == "":
        return None
    if not raw.isdigit():
        raise Reject(xrpc_error(400, "InvalidRequest", "malformed cursor"))
    return int(raw)


def create_record(ctx: Context, req: Request) -> Response:
    net = _net(ctx)
    body = _body(req)
    me = viewer(net, req)
    repo = str(body.get("repo", "")).casefold()
    if repo not in (me.id.casefold(), me.handle.casefold()):
        if _account(net, repo) is not None:  # another researcher's repo: not this session's
            return xrpc_error(401, "AuthRequiredError", "Authentication Required")
        return xrpc_error(400, "InvalidRequest", f"Could not find repo: {body.get('repo')}")
    if body.get("collection") != POST:
        return xrpc_error(400, "InvalidRequest", f"the sandbox stores only {POST} records")
    record = body.get("record")
    if not isinstance(record, dict) or record.get("$type") != POST:
        return xrpc_error(400, "InvalidRequest", f"Invalid {POST} record: $type must be {POST}")
    text = record.get("text")
    if not isinstance(text, str):
        return xrpc_error(400, "InvalidRequest", f"Invalid {POST} record: text must be a string")
    if len(text) > TEXT_GRAPHEMES or len(text.encode()) > TEXT_BYTES:
        return xrpc_error(
            400,
            "InvalidRequest",
            f"Invalid {POST} record: text must not be longer than 300 graphemes",
        )
    try:
        parse_iso(str(record.get("createdAt")))
    except ValueError:
        return xrpc_error(
            400, "InvalidRequest", f"Invalid {POST} record: createdAt must be a valid datetime"
        )
    rkey = body.get("rkey")
    if rkey is not None:
        if (
            not isinstance(rkey, str)
            or len(rkey) != 13
            or rkey[0] not in TID_CHARS[:16]
            or any(c not in TID_CHARS for c in rkey)
        ):
            return xrpc_error(400, "InvalidRequest", f"Invalid record key for {POST}: {rkey}")
        if f"at://{me.id}/{POST}/{rkey}" in net.state.get("uris", {}):
            return xrpc_error(500)  # the MST: "There is already a value at key"
    parent = None
    reply = record.get("reply")
    if reply is not None:
        parent_uri = reply.get("parent", {}).get("uri") if isinstance(reply, dict) else None
        parent = find(net, str(parent_uri))
        if parent is None:
            return xrpc_error(400, "InvalidRequest", f"reply parent {parent_uri} not found")
    try:
        mentioned = check_facets(net, text, record.get("facets"))
    except FacetError as exc:
        return xrpc_error(400, "InvalidRequest", str(exc))
    note = publish(net, text, mentioned, parent, record, rkey, me)
    return json_response(
        200,
        {
            "uri": uri_of(note),
            "cid": cid_of(note),
            "commit": {
                "cid": "bafyrei" + digest32(f"commit\x1f{note.key}", 52),
                "rev": tid(note.created_at, 0),
            },
            "validationStatus": "valid",
        },
    )


def get_record(ctx: Context, req: Request) -> Response:
    net = _net(ctx)
    repo = req.query.get("repo", "")
    member = net.members.get(repo) or net.member(repo)
    uri = (
        f"at://{member.id if member else repo}/{req.query.get('collection')}/"
        f"{req.query.get('rkey')}"
    )
    note = find(net, uri)
    if note is None:
        return xrpc_error(400, "RecordNotFound", f"Could not locate record: {uri}")
    return json_response(200, {"uri": uri, "cid": cid_of(note), "value": note.extra["record"]})


def get_posts(ctx: Context, req: Request) -> Response:
    net = _net(ctx)
    uris = query_all(req, "uris")
    if len(uris) > 25:
        return xrpc_error(400, "InvalidRequest", "uris must not have more than 25 elements")
    notes = [n for n in (find(net, u) for u in uris) if n is not None]
    return json_response(200, {"posts": [post_view(n) for n in notes]})


def _actor(net: Network, req: Request) -> Member:
    actor = req.query.get("actor", "")
    member = net.members.get(actor) or net.member(actor)
    if member is None:
        raise Reject(xrpc_error(400, "InvalidRequest", "Profile not found"))
    return member


def get_profile(ctx: Context, req: Request) -> Response:
    """``app.bsky.actor.getProfile``: a ``profileViewDetailed``. The atproto SDK asks for the
    researcher's own right after logging in (``Client.login`` returns it)."""
    net = _net(ctx)
    member = _actor(net, req)
    posts = sum(1 for k in net.by_author.get(member.id, []) if net.visible(k))
    return json_response(
        200,
        {
            **profile(member),
            "description": "",
            "followersCount": 0,
            "followsCount": 0,
            "postsCount": posts,
            "indexedAt": iso(net.clock.now()),
            "createdAt": iso(ctx.world.configured.start),
            "associated": {"lists": 0, "feedgens": 0, "starterPacks": 0, "labeler": False},
            "viewer": {"muted": False, "blockedBy": False},
        },
    )


def _thread(net: Network, note: Note, depth: int) -> dict[str, Any]:
    """A ``threadViewPost`` with its visible replies, ``depth`` levels down."""
    view: dict[str, Any] = {"$type": "app.bsky.feed.defs#threadViewPost", "post": post_view(note)}
    if depth > 0:
        children = sorted(
            k for k, n in net.notes.items() if n.parent == note.key and net.visible(k)
        )
        view["replies"] = [_thread(net, net.notes[k], depth - 1) for k in children]
    return view


def get_post_thread(ctx: Context, req: Request) -> Response:
    """``app.bsky.feed.getPostThread``: the post, its parents up to ``parentHeight``, replies
    down to ``depth`` (the lexicon's defaults, 6 and 80)."""
    net = _net(ctx)
    uri = req.query.get("uri", "")
    note = find(net, uri)
    if note is None:
        return xrpc_error(400, "NotFound", f"Post not found: {uri}")
    depth, height = req.query.get("depth", "6"), req.query.get("parentHeight", "80")
    if not (depth.isdigit() and int(depth) <= 1000 and height.isdigit() and int(height) <= 1000):
        return xrpc_error(400, "InvalidRequest", "depth and parentHeight must be 0 to 1000")
    thread = _thread(net, note, int(depth))
    child, key, left = thread, note.parent, int(height)
    while key is not None and left > 0:
        parent = {"$type": "app.bsky.feed.defs#threadViewPost", "post": post_view(net.notes[key])}
        child["parent"] = parent
        child, key, left = parent, net.notes[key].parent, left - 1
    return json_response(200, {"thread": thread})


def get_author_feed(ctx: Context, req: Request) -> Response:
    net = _net(ctx)
    member = _actor(net, req)
    kind = req.query.get("filter", "posts_with_replies")
    limit, before = _limit(req), _cursor(req)
    keys = net.by_author.get(member.id, [])
    out: list[int] = []
    for key in reversed(keys):
        if len(out) >= limit:
            break
        if not net.visible(key) or (before is not None and key >= before):
            continue
        if kind == "posts_no_replies" and net.notes[key].parent is not None:
            continue
        out.append(key)
    body: dict[str, Any] = {"feed": [{"post": post_view(net.notes[k])} for k in out]}
    if out:
        body["cursor"] = str(out[-1])
    return json_response(200, body)


def list_notifications(ctx: Context, req: Request) -> Response:
    net = _net(ctx)
    reasons = set(query_all(req, "reasons"))
    limit, before = _limit(req), _cursor(req)
    ceiling = net.ceiling()
    out: list[dict[str, Any]] = []
    last = None
    for key in reversed(net.inbox(viewer(net, req))):
        if len(out) >= limit:
            break
        if key > ceiling or (before is not None and key >= before):
            continue
        found = net.notifications[key]
        if reasons and found.reason not in reasons:
            continue
        note = net.notes[found.note]
        item = {
            "uri": uri_of(note),
            "cid": cid_of(note),
            "author": profile(note.author),
            "reason": found.reason,
            "record": note.extra["record"],
            "isRead": False,
            "indexedAt": iso(note.created_at),
            "labels": [],
        }
        if found.subject is not None:
            item["reasonSubject"] = uri_of(net.notes[found.subject])
        out.append(item)
        last = key
    body: dict[str, Any] = {"notifications": out, "priority": False}
    if last is not None:
        body["cursor"] = str(last)
    return json_response(200, body)


def _route(method: str, nsid: str, handler: Any, auth: bool = True) -> ApiRoute:
    return ApiRoute(method, f"/xrpc/{nsid}", handler, x=False, api=API, auth=auth)


ROUTES = [
    _route("POST", "com.atproto.server.createSession", create_session, auth=False),
    _route("POST", "com.atproto.server.refreshSession", refresh_session, auth=False),
    _route("GET", "com.atproto.identity.resolveHandle", resolve_handle, auth=False),
    _route("POST", "com.atproto.repo.createRecord", create_record),
    _route("GET", "com.atproto.repo.getRecord", get_record, auth=False),
    _route("GET", "app.bsky.actor.getProfile", get_profile),
    _route("GET", "app.bsky.feed.getPosts", get_posts),
    _route("GET", "app.bsky.feed.getPostThread", get_post_thread),
    _route("GET", "app.bsky.feed.getAuthorFeed", get_author_feed),
    _route("GET", "app.bsky.notification.listNotifications", list_notifications),
]
