"""The control plane under ``/_sandbox/``: create the world, move its clock, look inside.

Why over HTTP as well as in Python: a standalone sandbox (``mystery sandbox``) outlives runner
restarts, and crash tests kill the runner, not the sandbox. The runner therefore drives the world
the same way in both set-ups; in-process it may also share ``World.clock`` directly for speed.

Errors are ``{"error": "<what is wrong and how to fix it>"}`` with a 4xx status.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, get_args

from pydantic import ValidationError

from mystery.clock import iso, parse_iso
from mystery.sandbox import search, x_api
from mystery.sandbox.inspection import ground_truth
from mystery.sandbox.limits import Fault, FaultBody
from mystery.sandbox.routing import Context, Route
from mystery.sandbox.spec import WorldSpec
from mystery.sandbox.web import (
    BadBody,
    Reject,
    Request,
    Response,
    control_error,
    json_response,
)
from mystery.sandbox.world import WorldConflict

X_ROUTE_NAMES = frozenset(r.name for r in x_api.ROUTES + search.ROUTES)


def _body(req: Request) -> dict[str, Any]:
    try:
        return req.json()
    except BadBody as exc:
        raise Reject(control_error(400, str(exc))) from None


def validation_message(exc: ValidationError) -> str:
    """``brands[0].profile.answer_rate: message`` lines, one per problem."""
    lines = []
    for error in exc.errors():
        where = ""
        for part in error["loc"]:
            where += f"[{part}]" if isinstance(part, int) else ("." if where else "") + str(part)
        lines.append(f"{where or 'body'}: {str(error['msg']).removeprefix('Value error, ')}")
    return "; ".join(lines)


def put_world(ctx: Context, req: Request) -> Response:
    try:
        spec = WorldSpec.model_validate(_body(req))
    except ValidationError as exc:
        return control_error(400, f"invalid world: {validation_message(exc)}")
    try:
        created = ctx.world.configure(spec)
    except WorldConflict as exc:
        return control_error(409, str(exc))
    return json_response(201 if created else 200, {"created": created, **_world_view(ctx)})


def _world_view(ctx: Context) -> dict[str, Any]:
    world = ctx.world
    spec = world.spec
    if spec is None:
        return {"world": None, "accounts": []}
    return {
        "world": spec.to_body(),
        "accounts": [
            {"id": a.id, "username": a.username, "name": a.name, "brand": a.brand}
            for a in world.accounts.values()
        ],
    }


def get_world(ctx: Context, req: Request) -> Response:
    return json_response(200, _world_view(ctx))


def get_clock(ctx: Context, req: Request) -> Response:
    return json_response(200, {"now": iso(ctx.world.now())})


def post_clock(ctx: Context, req: Request) -> Response:
    body = _body(req)
    if set(body) - {"advance_to", "advance_by"} or len(body) != 1:
        return control_error(400, 'send {"advance_to": "<ISO time>"} or {"advance_by": <seconds>}')
    try:
        if "advance_to" in body:
            now = ctx.world.advance_to(parse_iso(str(body["advance_to"])))
        else:
            seconds = float(body["advance_by"])
            if seconds < 0:
                return control_error(
                    400, "advance_by must not be negative: the clock never goes back"
                )
            now = ctx.world.advance_by(timedelta(seconds=seconds))
    except (TypeError, ValueError) as exc:
        return control_error(
            400, f'cannot read the time: {exc}; use e.g. "2026-03-02T09:00:00.000Z"'
        )
    return json_response(200, {"now": iso(now)})


def get_posts(ctx: Context, req: Request) -> Response:
    return json_response(200, ground_truth(ctx.world))


def get_stats(ctx: Context, req: Request) -> Response:
    return json_response(200, ctx.stats.snapshot())


def reset_stats(ctx: Context, req: Request) -> Response:
    ctx.stats.reset()
    return json_response(200, {})


def get_rate_limits(ctx: Context, req: Request) -> Response:
    return json_response(200, {"enforce": ctx.limits.enforce})


def put_rate_limits(ctx: Context, req: Request) -> Response:
    body = _body(req)
    if set(body) != {"enforce"} or not isinstance(body["enforce"], bool):
        return control_error(400, 'send {"enforce": true} or {"enforce": false}')
    ctx.limits.enforce = body["enforce"]
    return json_response(200, {"enforce": ctx.limits.enforce})


def _fault_view(fault: Fault) -> dict[str, Any]:
    return {
        "route": fault.route,
        "status": fault.status,
        "times": fault.times,
        "body": fault.body,
        "when": fault.when,
        "delay": fault.delay,
    }


def add_fault(ctx: Context, req: Request) -> Response:
    body = _body(req)
    route = body.get("route")
    if route not in X_ROUTE_NAMES:
        return control_error(400, f"route must be one of {', '.join(sorted(X_ROUTE_NAMES))}")
    kind = body.get("body", "problem")
    if kind not in get_args(FaultBody):
        return control_error(400, "body must be problem, malformed or empty")
    when = body.get("when", "before")
    if when not in ("before", "after"):
        return control_error(400, "when must be before or after")
    try:
        fault = Fault(
            route=route,
            status=int(body.get("status", 503)),
            times=int(body.get("times", 1)),
            body=kind,
            when=when,
            delay=float(body.get("delay", 0.0)),
        )
    except (TypeError, ValueError) as exc:
        return control_error(400, f"status, times and delay must be numbers: {exc}")
    if not 100 <= fault.status <= 599 or fault.times < 1 or not 0 <= fault.delay <= 300:
        return control_error(400, "status is 100-599, times at least 1, delay 0-300 seconds")
    ctx.faults.add(fault)
    return json_response(201, _fault_view(fault))


def list_faults(ctx: Context, req: Request) -> Response:
    return json_response(200, {"faults": [_fault_view(f) for f in ctx.faults.pending()]})


def clear_faults(ctx: Context, req: Request) -> Response:
    ctx.faults.clear()
    return json_response(200, {"faults": []})


ROUTES = [
    Route("PUT", "/_sandbox/world", put_world, x=False),
    Route("GET", "/_sandbox/world", get_world, x=False),
    Route("GET", "/_sandbox/clock", get_clock, x=False),
    Route("POST", "/_sandbox/clock", post_clock, x=False),
    Route("GET", "/_sandbox/posts", get_posts, x=False),
    Route("GET", "/_sandbox/stats", get_stats, x=False),
    Route("POST", "/_sandbox/stats/reset", reset_stats, x=False),
    Route("GET", "/_sandbox/rate-limits", get_rate_limits, x=False),
    Route("PUT", "/_sandbox/rate-limits", put_rate_limits, x=False),
    Route("GET", "/_sandbox/faults", list_faults, x=False),
    Route("POST", "/_sandbox/faults", add_fault, x=False),
    Route("DELETE", "/_sandbox/faults", clear_faults, x=False),
]
