"""Requests, responses and X's error bodies, independent of the HTTP server that carries them.

Why a tiny request/response pair instead of handler methods: the routes are plain functions
from :class:`Request` to :class:`Response`, testable without sockets, and the server module is
left with nothing but bytes on the wire.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

PROBLEMS = "https://api.twitter.com/2/problems/"
"""X's problem type URIs (the OpenAPI ``Problem`` discriminator uses this host)."""

JSON = "application/json; charset=utf-8"
PROBLEM_JSON = "application/problem+json"


class BadBody(ValueError):
    """The request body is not the JSON object a route needs."""


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    """Lower-case names."""
    body: bytes = b""
    params: Mapping[str, str] = field(default_factory=dict)
    """Path parameters, e.g. ``{"id": "123"}`` for ``/2/users/:id/mentions``."""
    query_string: str = ""
    """The raw query, for parameters given more than once (``types[]=...``, ``reasons=...``):
    ``query`` keeps only the first value of each."""

    def json(self) -> dict[str, Any]:
        """The body as a JSON object; :class:`BadBody` otherwise."""
        try:
            value = json.loads(self.body or b"null")
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BadBody(f"the body is not valid JSON: {exc}") from None
        if not isinstance(value, dict):
            raise BadBody("the body must be a JSON object")
        return value


@dataclass(slots=True)
class Response:
    status: int
    body: bytes
    content_type: str = JSON
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False
    """Send nothing and close the connection (an injected dropped connection)."""


def dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def json_response(status: int, value: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(status, dumps(value), JSON, dict(headers or {}))


def problem(
    status: int, title: str, detail: str, kind: str = "about:blank", **extra: Any
) -> Response:
    """An RFC 7807 problem as X sends it (``type`` is ``about:blank`` or an X problem URI)."""
    body: dict[str, Any] = {
        "title": title,
        "detail": detail,
        "type": kind if ":" in kind else PROBLEMS + kind,
    }
    if kind == "about:blank":
        body["status"] = status
    return Response(status, dumps({**body, **extra}), PROBLEM_JSON)


def invalid_request(message: str, parameters: Mapping[str, list[str]]) -> Response:
    """400 as X words it: a generic title, the specific problem under ``errors``."""
    return problem(
        400,
        "Invalid Request",
        "One or more parameters to your request was invalid.",
        "invalid-request",
        errors=[{"parameters": dict(parameters), "message": message}],
    )


def not_found_error(kind: str, parameter: str, value: str) -> dict[str, str]:
    """A partial error inside a 200 (``errors: [...]``), e.g. an unknown username."""
    return {
        "value": value,
        "detail": f"Could not find {kind} with {parameter}: [{value}].",
        "title": "Not Found Error",
        "resource_type": kind,
        "parameter": parameter,
        "resource_id": value,
        "type": PROBLEMS + "resource-not-found",
    }


def control_error(status: int, message: str) -> Response:
    """The control plane's error shape: one ``error`` message that says how to fix it."""
    return json_response(status, {"error": message})


class Reject(Exception):
    """Stop handling a request and answer with ``response`` (raised deep inside a route)."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response
