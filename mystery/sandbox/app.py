"""One request in, one response out: routing, auth, rate limits, faults, request counts.

Why this sits apart from the HTTP server: everything here is a pure function of the request and
the sandbox state, so it can be exercised without sockets, and the server stays a thin shell.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Mapping

from mystery.sandbox import bluesky_api, control, mastodon_api, search, x_api, x_dms
from mystery.sandbox.faults import Fault, transform
from mystery.sandbox.limits import TOO_MANY_REQUESTS
from mystery.sandbox.params import check_query
from mystery.sandbox.platform import Api, ApiRoute, serve
from mystery.sandbox.routing import Context, Route
from mystery.sandbox.runners import RUNNER_TIMEOUT, Runners
from mystery.sandbox.web import (
    PROBLEM_JSON,
    Reject,
    Request,
    Response,
    control_error,
    dumps,
    problem,
)
from mystery.sandbox.world import NoWorld, World

log = logging.getLogger(__name__)

ROUTES: list[Route] = [
    *x_api.ROUTES,
    *x_dms.ROUTES,
    *search.ROUTES,
    *control.ROUTES,
    *mastodon_api.ROUTES,
    *bluesky_api.ROUTES,
]
APIS: dict[str, Api] = {"/api/": mastodon_api.API, "/xrpc/": bluesky_api.API}
"""Path prefixes of the non-X platforms, for answering unknown paths in their words."""

_STATUS_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def _authorised(headers: Mapping[str, str]) -> bool:
    """Any bearer token or OAuth 1.0a header will do: the sandbox checks presence, not
    signatures, and every request acts as the researcher."""
    value = headers.get("authorization", "")
    scheme, _, credentials = value.partition(" ")
    return scheme.lower() in ("bearer", "oauth") and bool(credentials.strip())


def _fault_response(fault: Fault, rate_headers: dict[str, str]) -> Response:
    if fault.body == "drop":
        return Response(0, b"", drop=True)
    if fault.body == "malformed":
        response = Response(fault.status, b'{"data": [{"id": "1", "text": ')
    elif fault.body == "empty":
        response = Response(fault.status, b"")
    elif fault.status == 429:
        response = Response(429, dumps(TOO_MANY_REQUESTS), PROBLEM_JSON)
    else:
        title = _STATUS_TITLES.get(fault.status, "Error")
        response = problem(fault.status, title, title)
    if fault.status == 429 and fault.rate_headers:
        response.headers.update({**rate_headers, "x-rate-limit-remaining": "0"})
    return response


class App:
    """The sandbox's request handler. ``context`` holds the world, stats, limits and faults."""

    def __init__(self, world: World, *, enforce_rate_limits: bool = False,
                 runner_timeout: float = RUNNER_TIMEOUT, fair_clock: bool = True) -> None:
        self.context = Context(world, runners=Runners(runner_timeout, fair=fair_clock))
        self.context.limits.enforce = enforce_rate_limits

    def _match(self, method: str, path: str) -> tuple[Route | None, dict[str, str], bool]:
        """The route, its path parameters, and whether the path exists for another method."""
        other_method = False
        for route in ROUTES:
            found = route.pattern.match(path)
            if found is not None:
                if route.method == method:
                    return route, found.groupdict(), False
                other_method = True
        return None, {}, other_method

    def handle(
        self,
        method: str,
        path: str,
        query: Mapping[str, str],
        headers: Mapping[str, str],
        body: bytes = b"",
        query_string: str = "",
    ) -> Response:
        if path.startswith("/api/") and path.endswith("/") and path.strip("/") != "api":
            path = path.rstrip("/")  # Mastodon (Rails) ignores a trailing slash; clients send it
        route, params, other_method = self._match(method, path)
        control_plane = path.startswith("/_sandbox/")
        if route is None:
            if control_plane:
                return control_error(
                    405 if other_method else 404, f"no control route {method} {path}"
                )
            api = next((a for prefix, a in APIS.items() if path.startswith(prefix)), None)
            if api is not None:
                return api.not_found(method, path, other_method)
            return problem(
                405 if other_method else 404,
                "Method Not Allowed" if other_method else "Not Found",
                f"The sandbox does not emulate {method} {path}.",
            )
        ctx = self.context
        ctx.stats.count(route.name)
        request = Request(method, path, query, headers, body, params, query_string)
        if isinstance(route, ApiRoute):
            return serve(ctx, route, request)  # Mastodon, Bluesky: see platform.py
        if not route.x:
            return self._run(route, request)
        if not _authorised(headers):
            return problem(401, "Unauthorized", "Unauthorized")
        allowed, rate_headers = ctx.limits.hit(route.name, ctx.world.now())
        taken = ctx.faults.take(route.name) if allowed else None
        if not allowed:
            response = Response(429, dumps(TOO_MANY_REQUESTS), PROBLEM_JSON)
        elif taken is None:
            response = self._run(route, request)
        else:
            response = self._faulty(route, request, *taken, rate_headers)
            if not taken[0].rate_headers:
                return response  # a platform that forgets its rate-limit headers
        response.headers.update(
            {k: v for k, v in rate_headers.items() if k not in response.headers}
        )
        return response

    def _faulty(
        self,
        route: Route,
        request: Request,
        fault: Fault,
        rng: random.Random,
        rate_headers: dict[str, str],
    ) -> Response:
        """Answer as ``fault`` says: late, changed, replaced, or not at all."""
        if fault.when == "before":
            time.sleep(fault.delay)
        if fault.passes_through:
            response = self._run(route, request)
            if 200 <= response.status < 300:
                response.body = transform(response.body, fault, rng)
        else:
            if fault.when == "after":
                self._run(route, request)  # the work is done; its answer is lost
            response = _fault_response(fault, rate_headers)
        if fault.when == "after":
            time.sleep(fault.delay)
        return response

    def _run(self, route: Route, request: Request) -> Response:
        try:
            if route.x:
                check_query(route.name, request)
            if not route.locked:
                return route.handler(self.context, request)
            with self.context.world.lock:
                return route.handler(self.context, request)
        except Reject as exc:
            return exc.response
        except NoWorld as exc:
            if route.x:
                return problem(503, "Service Unavailable", str(exc))
            return control_error(409, str(exc))
        except Exception:
            log.exception("sandbox route %s failed", route.name)
            if route.x:
                return problem(500, "Internal Server Error", "Internal Server Error")
            return control_error(500, "internal error in the sandbox; see its log")
