"""The JSON body of a platform's answer, or the contract's TransientError when it is not one.

Shared by the httpx channels (Mastodon, Bluesky) so a malformed answer is handled one way:
recorded by the runner as a passing fault and retried, never a crash (issue: platform faults).
"""

from __future__ import annotations

from typing import Any

import httpx

from mystery.errors import TransientError


def json_body(response: httpx.Response, platform: str, what: str, kind: type = dict) -> Any:
    """``response.json()`` if it parses and is a ``kind``; else TransientError naming ``what``."""
    try:
        value = response.json()
    except ValueError:
        raise TransientError(f"{platform} sent a malformed answer to {what}") from None
    if not isinstance(value, kind):
        raise TransientError(f"{platform} sent a malformed answer to {what}")
    return value
