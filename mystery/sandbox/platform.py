"""The request pipeline of the Mastodon and Bluesky emulators: rate limits, faults, auth, errors,
each worded as that platform words them.

Why beside the X pipeline in :mod:`app` rather than inside it: X, Mastodon and Bluesky disagree on
everything around a request (``x-rate-limit-reset`` in epoch seconds, ``X-RateLimit-Reset`` in
ISO 8601, ``RateLimit-Reset`` plus ``Retry-After``; RFC 7807 problems, ``{"error"}``,
``{"error", "message"}``), while the bookkeeping is shared: the same rate-limit windows on the
virtual clock (:class:`~mystery.sandbox.limits.RateLimits`, so ``enforce`` covers every platform)
and the same fault queue, keyed by route name (``"POST /api/v1/statuses"``).
"""

from __future__ import annotations

import json
import logging
import random
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mystery.sandbox.faults import Fault
from mystery.sandbox.routing import Context, Route
from mystery.sandbox.web import Reject, Request, Response, dumps, json_response
from mystery.sandbox.world import NoWorld, WorldError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limit:
    """One rate-limit window as the shared bookkeeping reports it."""

    limit: int
    remaining: int
    reset: int  # epoch seconds (virtual clock)


class Api:
    """How one platform words the answers every route shares. Subclasses override."""

    name = "api"

    def error(self, status: int, message: str | None = None) -> Response:
        return json_response(status, {"error": message or "error"})

    def too_many(self) -> Response:
        return self.error(429)

    def rate_headers(self, limit: Limit, now: datetime, limited: bool) -> dict[str, str]:
        return {}

    def authorise(self, ctx: Context, req: Request) -> Response | None:
        """``None`` when the request may proceed, else the refusal."""
        return None

    def not_found(self, method: str, path: str, other_method: bool) -> Response:
        return self.error(405 if other_method else 404)


@dataclass(frozen=True)
class ApiRoute(Route):
    """A route of a non-X platform: ``api`` words its answers; ``auth`` says whether it needs
    a token (Bluesky's login and handle resolution do not)."""

    api: Api | None = None
    auth: bool = True


def _limit(headers: dict[str, str]) -> Limit:
    return Limit(
        int(headers["x-rate-limit-limit"]),
        int(headers["x-rate-limit-remaining"]),
        int(headers["x-rate-limit-reset"]),
    )


def _fault_response(api: Api, fault: Fault) -> Response:
    if fault.body == "drop":
        return Response(0, b"", drop=True)
    if fault.body == "malformed":
        return Response(fault.status, b'{"id": "1", "content": ')
    if fault.body == "empty":
        return Response(fault.status, b"")
    return api.too_many() if fault.status == 429 else api.error(fault.status)


LISTS = ("notifications", "feed", "posts")
"""Where the items of a Bluesky answer are; a Mastodon answer is itself the list."""


def transform(body: bytes, fault: Fault, rng: random.Random) -> bytes:
    """The real answer with its items doubled or shuffled (``duplicate``, ``out_of_order``);
    other pass-through kinds deliver it unchanged, only late."""
    if fault.body not in ("duplicate", "out_of_order") or not body:
        return body
    value = json.loads(body)
    items = value if isinstance(value, list) else None
    if isinstance(value, dict):
        items = next((value[k] for k in LISTS if isinstance(value.get(k), list)), None)
    if items is None:
        return body
    changed = (
        [i for item in items for i in (item, item)]
        if fault.body == "duplicate"
        else (rng.sample(items, len(items)))
    )
    items[:] = changed
    return dumps(value)


def serve(ctx: Context, route: ApiRoute, req: Request) -> Response:
    """Rate limit, fault, auth, handler — the X pipeline's order — in ``route.api``'s words."""
    api = route.api
    assert api is not None
    now = ctx.world.now()
    allowed, x_headers = ctx.limits.hit(route.name, now)
    limit = _limit(x_headers)
    taken = ctx.faults.take(route.name) if allowed else None
    if not allowed:
        response = api.too_many()
    elif taken is None:
        response = _run(ctx, route, req)
    else:
        fault, rng = taken
        if fault.when == "before":
            time.sleep(fault.delay)  # outside the world lock: other requests go on
        if fault.passes_through:
            response = _run(ctx, route, req)
            if 200 <= response.status < 300:
                response.body = transform(response.body, fault, rng)
        else:
            if fault.when == "after":
                _run(ctx, route, req)  # the work is done; its answer is lost
            response = _fault_response(api, fault)
        if fault.when == "after":
            time.sleep(fault.delay)
        if not fault.rate_headers or response.drop:
            return response
    if response.status == 429:
        limit = Limit(limit.limit, 0, limit.reset)
    headers = api.rate_headers(limit, now, response.status == 429)
    response.headers.update({k: v for k, v in headers.items() if k not in response.headers})
    return response


def _run(ctx: Context, route: ApiRoute, req: Request) -> Response:
    api = route.api
    assert api is not None
    try:
        with ctx.world.lock:
            if route.auth:
                denied = api.authorise(ctx, req)
                if denied is not None:
                    return denied
            return route.handler(ctx, req)
    except Reject as exc:
        return exc.response
    except NoWorld as exc:
        return api.error(503, str(exc))
    except WorldError as exc:
        return api.error(404, str(exc))
    except Exception:
        log.exception("sandbox route %s failed", route.name)
        return api.error(500)


def query_all(req: Request, name: str) -> list[str]:
    """Every value of a repeated query parameter (``types[]=a&types[]=b``)."""
    from urllib.parse import parse_qsl

    raw = req.query_string
    if not raw:
        value = req.query.get(name)
        return [] if value is None else [value]
    return [v for k, v in parse_qsl(raw, keep_blank_values=True) if k == name]


def body_fields(req: Request) -> dict[str, Any]:
    """A JSON object body, or form fields (Mastodon accepts both)."""
    from urllib.parse import parse_qsl

    kind = req.headers.get("content-type", "")
    if "application/x-www-form-urlencoded" in kind:
        return dict(parse_qsl(req.body.decode("utf-8", "replace"), keep_blank_values=True))
    return req.json()
