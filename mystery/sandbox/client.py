"""The control plane from Python, over HTTP: what a runner uses against a standalone sandbox.

Why a client at all when the runner could share ``World`` in-process: crash tests run the sandbox
as its own process (``mystery sandbox``) so it survives the runner being killed; the runner must
then create the world and move the clock the same way it would in-process. Every failure becomes
a :class:`~mystery.errors.SandboxError` with the sandbox's own message.
"""

from __future__ import annotations

from datetime import datetime
from types import TracebackType
from typing import Any

import httpx

from mystery.clock import iso, parse_iso
from mystery.errors import SandboxError
from mystery.sandbox.spec import WorldSpec


class SandboxControl:
    """``/_sandbox/`` of the sandbox at ``url`` (e.g. ``http://127.0.0.1:8765``)."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        # Plain http:// needs no TLS context, and building one (loading CA files) costs ~0.1 s.
        plain = self.url.startswith("http://")
        self._http = httpx.Client(base_url=self.url, timeout=timeout, verify=not plain)

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        try:
            response = self._http.request(method, f"/_sandbox/{path}", json=body)
        except httpx.HTTPError as exc:
            raise SandboxError(
                f"cannot reach the sandbox at {self.url}: {exc}; start it with "
                "'mystery sandbox' or check the study's endpoint"
            ) from None
        try:
            value = response.json()
        except ValueError:
            value = None
        if response.status_code >= 400:
            message = value.get("error") if isinstance(value, dict) else None
            raise SandboxError(
                f"sandbox {method} /_sandbox/{path} failed ({response.status_code}): "
                f"{message or response.text[:200]}"
            )
        return value

    def put_world(self, spec: WorldSpec) -> bool:
        """Create the world; ``False`` when this same world already exists (a resumed run)."""
        return bool(self._call("PUT", "world", spec.to_body())["created"])

    def world(self) -> dict[str, Any]:
        """``{"world": <body or None>, "accounts": [{"id", "username", "name", "brand"}]}``."""
        result: dict[str, Any] = self._call("GET", "world")
        return result

    def now(self) -> datetime:
        return parse_iso(self._call("GET", "clock")["now"])

    def advance_to(self, when: datetime) -> datetime:
        """Move the virtual clock forward to ``when`` (never back); return the new now."""
        return parse_iso(self._call("POST", "clock", {"advance_to": iso(when)})["now"])

    def posts(self) -> dict[str, Any]:
        """Ground truth: ``{"now", "posts": [...], "replies": [...]}``."""
        result: dict[str, Any] = self._call("GET", "posts")
        return result

    def stats(self) -> dict[str, int]:
        result: dict[str, int] = self._call("GET", "stats")
        return result

    def reset_stats(self) -> None:
        self._call("POST", "stats/reset")

    def enforce_rate_limits(
        self, enforce: bool = True, limits: dict[str, int] | None = None
    ) -> dict[str, Any]:
        """Answer 429 past each route's limit; ``limits`` lowers some (per 15 minutes)."""
        body: dict[str, Any] = {"enforce": enforce}
        if limits is not None:
            body["limits"] = limits
        result: dict[str, Any] = self._call("PUT", "rate-limits", body)
        return result

    def rate_limits(self) -> dict[str, Any]:
        """``{"enforce", "limits", "refused": {route: 429s sent}}``."""
        result: dict[str, Any] = self._call("GET", "rate-limits")
        return result

    def add_fault(
        self,
        route: str,
        status: int = 503,
        times: int | None = 1,
        *,
        body: str = "problem",
        when: str = "before",
        delay: float = 0.0,
        probability: float = 1.0,
        seed: int = 0,
        skip: int = 0,
        rate_headers: bool = True,
    ) -> None:
        """Make requests to ``route`` (e.g. ``"POST /2/tweets"``) fail: see
        :mod:`mystery.sandbox.faults` for the kinds. ``times=None`` never runs out."""
        self._call(
            "POST",
            "faults",
            {
                "route": route,
                "status": status,
                "times": times,
                "body": body,
                "when": when,
                "delay": delay,
                "probability": probability,
                "seed": seed,
                "skip": skip,
                "rate_headers": rate_headers,
            },
        )

    def faults(self) -> dict[str, Any]:
        """``{"faults": [pending...], "fired": {"<route> <body>": times fired}}``."""
        result: dict[str, Any] = self._call("GET", "faults")
        return result

    def add_crowd(self, count: int, start: datetime, end: datetime) -> None:
        """``count`` unrelated mentions of the researcher spread over ``[start, end)``."""
        self._call("POST", "crowd", {"count": count, "start": iso(start), "end": iso(end)})

    def post_as_researcher(self, text: str, at: datetime | None = None) -> dict[str, str]:
        """Post ``text`` on X as the researcher (by hand, as in ``manual`` mode), now or at
        ``at``; returns the post's ``id`` and ``created_at``."""
        body: dict[str, Any] = {"text": text, "at": iso(at) if at is not None else None}
        result: dict[str, str] = self._call("POST", "x/researcher-posts", body)
        return result

    def edit_as_researcher(self, post_id: str, text: str) -> dict[str, Any]:
        """Edit the researcher's post ``post_id`` now; returns the edit's ``id`` and the
        ``edit_history`` (every version's id, oldest first)."""
        result: dict[str, Any] = self._call("POST", f"x/researcher-posts/{post_id}/edit",
                                            {"text": text})
        return result

    def set_mentions_beyond_reach(self, behaviour: str) -> None:
        """``"oldest"`` (default) or ``"empty"``: see :class:`mystery.sandbox.routing.Quirks`."""
        self._call("PUT", "quirks", {"mentions_beyond_reach": behaviour})

    def clear_faults(self) -> None:
        self._call("DELETE", "faults")

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SandboxControl:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
