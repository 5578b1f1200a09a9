"""The control plane under ``/_sandbox/``: create the world, move its clock, look inside.

Why over HTTP as well as in Python: a standalone sandbox (``mystery sandbox``) outlives runner
restarts, and crash tests kill the runner, not the sandbox. The runner therefore drives the world
the same way in both set-ups; in-process it may also share ``World.clock`` directly for speed.

Errors are ``{"error": "<what is wrong and how to fix it>"}`` with a 4xx status.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import ValidationError

from mystery.clock import iso, parse_iso
from mystery.sandbox import search, x_api, x_dms
from mystery.sandbox.faults import FAULT_BODIES, Fault
from mystery.sandbox.inspection import ground_truth
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
from mystery.sandbox.world import WorldConflict, WorldError

X_ROUTE_NAMES = frozenset(r.name for r in x_api.ROUTES + x_dms.ROUTES + search.ROUTES)


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
        return {"id": None, "world": None, "accounts": []}
    return {
        "id": world.id,
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


def _runner(body: dict[str, Any]) -> tuple[str, str] | None:
    """The ``runner`` (an id) and ``name`` a runner's request names, checked."""
    runner, name = body.get("runner"), body.get("name")
    if not isinstance(runner, str) or not runner or not isinstance(name, str) or not name:
        return None
    return runner, name


def post_clock(ctx: Context, req: Request) -> Response:
    """``{"advance_to": t}`` or ``{"advance_by": s}`` moves the clock at once (the control
    plane); ``{"advance_to": t, "runner": id, "name": accounts}`` is a runner's wait, held by
    the barrier over the announced runners (:mod:`mystery.sandbox.runners`)."""
    body = _body(req)
    if "runner" in body or "name" in body:
        who = _runner(body)
        if who is None or set(body) != {"advance_to", "runner", "name"}:
            return control_error(400, 'a runner sends {"advance_to": "<ISO time>", '
                                      '"runner": "<its id>", "name": "<its accounts>"}')
        try:
            when = parse_iso(str(body["advance_to"]))
        except (TypeError, ValueError) as exc:
            return control_error(
                400, f'cannot read the time: {exc}; use e.g. "2026-03-02T09:00:00.000Z"'
            )
        ctx.world.configured  # noqa: B018 - raises NoWorld before PUT /_sandbox/world
        now = ctx.runners.ask(*who, when, ctx.world)
        return json_response(200, {"now": iso(now)})
    if set(body) - {"advance_to", "advance_by"} or len(body) != 1:
        return control_error(400, 'send {"advance_to": "<ISO time>"} or {"advance_by": <seconds>}')
    try:
        with ctx.world.lock:
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
    ctx.runners.moved()
    return json_response(200, {"now": iso(now)})


def join_runners(ctx: Context, req: Request) -> Response:
    """``{"runner": id, "name": accounts}``: a runner announces itself; from now on the clock
    waits for it (until it leaves, or stays silent beyond the timeout)."""
    who = _runner(_body(req))
    if who is None:
        return control_error(400, 'send {"runner": "<a fresh id>", "name": "<its accounts>"}')
    ctx.world.configured  # noqa: B018 - raises NoWorld before PUT /_sandbox/world
    now = ctx.runners.join(*who, ctx.world)
    return json_response(201, {"now": iso(now)})


def leave_runners(ctx: Context, req: Request) -> Response:
    """``{"runner": id}``: the runner stops; the clock no longer waits for it."""
    runner = _body(req).get("runner")
    if not isinstance(runner, str) or not runner:
        return control_error(400, 'send {"runner": "<its id>"}')
    return json_response(200, {"now": iso(ctx.runners.leave(runner, ctx.world))})


def get_runners(ctx: Context, req: Request) -> Response:
    return json_response(200, ctx.runners.view())


def get_posts(ctx: Context, req: Request) -> Response:
    return json_response(200, ground_truth(ctx.world))


def get_stats(ctx: Context, req: Request) -> Response:
    return json_response(200, ctx.stats.snapshot())


def reset_stats(ctx: Context, req: Request) -> Response:
    ctx.stats.reset()
    return json_response(200, {})


def _rate_limit_view(ctx: Context) -> dict[str, Any]:
    limits = ctx.limits
    return {
        "enforce": limits.enforce,
        "limits": dict(sorted(limits.overrides.items())),
        "refused": dict(sorted(limits.refused.items())),
    }


def get_rate_limits(ctx: Context, req: Request) -> Response:
    return json_response(200, _rate_limit_view(ctx))


def put_rate_limits(ctx: Context, req: Request) -> Response:
    """``{"enforce": bool, "limits": {route: requests per 15 min}}`` (``limits`` optional: it
    replaces the lowered limits; X's documented ones apply to every other route)."""
    body = _body(req)
    usage = (
        'send {"enforce": true} or {"enforce": false}, optionally with '
        '"limits": {"<route>": <requests per 15 minutes>}'
    )
    if not {"enforce"} <= set(body) <= {"enforce", "limits"} or not isinstance(
        body["enforce"], bool
    ):
        return control_error(400, usage)
    limits = body.get("limits", {})
    if not isinstance(limits, dict) or any(
        r not in X_ROUTE_NAMES or not isinstance(n, int) or isinstance(n, bool) or n < 1
        for r, n in limits.items()
    ):
        return control_error(
            400, f"limits maps routes ({', '.join(sorted(X_ROUTE_NAMES))}) to whole numbers >= 1"
        )
    ctx.limits.enforce = body["enforce"]
    if "limits" in body:
        ctx.limits.overrides = dict(limits)
    return json_response(200, _rate_limit_view(ctx))


_FAULT_KEYS = frozenset(
    ("route", "status", "times", "body", "when", "delay", "probability", "seed", "skip",
     "rate_headers")
)


def _fault(body: dict[str, Any]) -> Fault | str:
    """The fault a body describes, or what is wrong with it."""
    unknown = sorted(set(body) - _FAULT_KEYS)
    if unknown:
        return f"unknown key {unknown[0]!r}; a fault takes {', '.join(sorted(_FAULT_KEYS))}"
    route = body.get("route")
    if route not in X_ROUTE_NAMES:
        return f"route must be one of {', '.join(sorted(X_ROUTE_NAMES))}"
    kind = body.get("body", "problem")
    if kind not in FAULT_BODIES:
        return f"body must be one of {', '.join(FAULT_BODIES)}"
    when = body.get("when", "before")
    if when not in ("before", "after"):
        return "when must be before or after"
    times = body.get("times", 1)
    if not isinstance(body.get("rate_headers", True), bool):
        return "rate_headers must be true or false"
    try:
        fault = Fault(
            route=route,
            status=int(body.get("status", 503)),
            times=None if times is None else int(times),
            body=kind,
            when=when,
            delay=float(body.get("delay", 0.0)),
            probability=float(body.get("probability", 1.0)),
            seed=int(body.get("seed", 0)),
            skip=int(body.get("skip", 0)),
            rate_headers=body.get("rate_headers", True),
        )
    except (TypeError, ValueError) as exc:
        return f"status, times, delay, probability, seed and skip must be numbers: {exc}"
    if not 100 <= fault.status <= 599 or (fault.times is not None and fault.times < 1):
        return "status is 100-599 and times at least 1 (or null: without end)"
    if not 0 <= fault.delay <= 300 or not 0 < fault.probability <= 1 or fault.skip < 0:
        return "delay is 0-300 seconds, probability above 0 and at most 1, skip at least 0"
    return fault


def add_fault(ctx: Context, req: Request) -> Response:
    fault = _fault(_body(req))
    if isinstance(fault, str):
        return control_error(400, fault)
    ctx.faults.add(fault)
    return json_response(201, fault.view())


def _faults_view(ctx: Context) -> dict[str, Any]:
    return {
        "faults": [f.view() for f in ctx.faults.pending()],
        "fired": dict(sorted(ctx.faults.fired.items())),
    }


def list_faults(ctx: Context, req: Request) -> Response:
    return json_response(200, _faults_view(ctx))


def clear_faults(ctx: Context, req: Request) -> Response:
    ctx.faults.clear()
    return json_response(200, _faults_view(ctx))


def add_crowd(ctx: Context, req: Request) -> Response:
    """``{"count": n, "start": t0, "end": t1}``: ``n`` unrelated mentions of the researcher,
    evenly spread over ``[t0, t1)`` (they become visible as the clock passes them): the traffic
    that pushes a brand's reply beyond the 800 reachable mentions during a long downtime."""
    body = _body(req)
    try:
        count = int(body["count"])
        start, end = parse_iso(str(body["start"])), parse_iso(str(body["end"]))
    except (KeyError, TypeError, ValueError):
        return control_error(
            400, 'send {"count": <1-100000>, "start": "<ISO time>", "end": "<ISO time>"}'
        )
    if not 1 <= count <= 100_000 or end <= start:
        return control_error(400, "count is 1-100000 and end must be after start")
    ids = ctx.world.add_crowd(count, start, end)
    return json_response(201, {"created": len(ids), "first_id": str(ids[0]),
                               "last_id": str(ids[-1])})


def edit_researcher_post(ctx: Context, req: Request) -> Response:
    """``{"text": "..."}``: the researcher edits one of their posts now (X gives the edit a new
    id); the brand's later replies answer the edit. For tests of edited probes."""
    body = _body(req)
    try:
        text = str(body["text"])
        edit = ctx.world.edit_post(int(req.params["id"]), text)
    except (KeyError, TypeError, ValueError):
        return control_error(400, 'send {"text": "the edited text"} to an existing post id')
    except WorldError as exc:
        return control_error(404, str(exc))
    return json_response(201, {"id": str(edit.id), "created_at": iso(edit.created_at),
                               "edit_history": [str(i) for i in edit.edits]})


def researcher_post(ctx: Context, req: Request) -> Response:
    """``{"text": "...", "at": t}``: the researcher posts on X by hand (``manual`` mode), now
    or at a later ``at``; the brand answers it as any probe. For tests of manual posting."""
    body = _body(req)
    try:
        text = str(body["text"])
        at = parse_iso(str(body["at"])) if body.get("at") is not None else None
    except (KeyError, TypeError, ValueError):
        return control_error(400, 'send {"text": "@brand question", "at": "<ISO time>"}')
    try:
        post = ctx.world.create_post(ctx.world.researcher.id, text, at=at)
    except WorldError as exc:
        return control_error(409, str(exc))
    return json_response(201, {"id": str(post.id), "created_at": iso(post.created_at)})


def get_quirks(ctx: Context, req: Request) -> Response:
    return json_response(200, {"mentions_beyond_reach": ctx.quirks.mentions_beyond_reach})


def put_quirks(ctx: Context, req: Request) -> Response:
    body = _body(req)
    if set(body) != {"mentions_beyond_reach"} or body["mentions_beyond_reach"] not in (
        "oldest",
        "empty",
    ):
        return control_error(400, 'send {"mentions_beyond_reach": "oldest"} or "empty"')
    ctx.quirks.mentions_beyond_reach = body["mentions_beyond_reach"]
    return get_quirks(ctx, req)


ROUTES = [
    Route("PUT", "/_sandbox/world", put_world, x=False),
    Route("GET", "/_sandbox/world", get_world, x=False),
    Route("GET", "/_sandbox/clock", get_clock, x=False),
    # Not under the world's lock: a runner's wait lasts up to a second, and the other
    # runners' platform requests must go on meanwhile (the barrier locks what it moves).
    Route("POST", "/_sandbox/clock", post_clock, x=False, locked=False),
    Route("GET", "/_sandbox/runners", get_runners, x=False, locked=False),
    Route("POST", "/_sandbox/runners", join_runners, x=False, locked=False),
    Route("DELETE", "/_sandbox/runners", leave_runners, x=False, locked=False),
    Route("GET", "/_sandbox/posts", get_posts, x=False),
    Route("GET", "/_sandbox/stats", get_stats, x=False),
    Route("POST", "/_sandbox/stats/reset", reset_stats, x=False),
    Route("GET", "/_sandbox/rate-limits", get_rate_limits, x=False),
    Route("PUT", "/_sandbox/rate-limits", put_rate_limits, x=False),
    Route("GET", "/_sandbox/faults", list_faults, x=False),
    Route("POST", "/_sandbox/faults", add_fault, x=False),
    Route("DELETE", "/_sandbox/faults", clear_faults, x=False),
    Route("POST", "/_sandbox/crowd", add_crowd, x=False),
    Route("POST", "/_sandbox/x/researcher-posts", researcher_post, x=False),
    Route("POST", "/_sandbox/x/researcher-posts/:id/edit", edit_researcher_post, x=False),
    Route("GET", "/_sandbox/quirks", get_quirks, x=False),
    Route("PUT", "/_sandbox/quirks", put_quirks, x=False),
]
