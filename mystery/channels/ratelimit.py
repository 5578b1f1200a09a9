"""Reading the platforms' rate-limit headers into one instant: when the runner may try again.

Why a module of its own: the three HTTP platforms say "wait" three ways (platforms.md §1.5,
§3.3, §4.5), and getting one wrong makes the runner either hammer a platform or sleep for hours:

=========  ===============================  ==========================================
platform   header                           reset written as
=========  ===============================  ==========================================
X          ``x-rate-limit-reset``           epoch seconds (tweepy reads it)
Mastodon   ``X-RateLimit-Reset``            ISO 8601 with microseconds, UTC
Bluesky    ``RateLimit-Reset``              epoch seconds; ``Retry-After`` on a 429
=========  ===============================  ==========================================
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from mystery.clock import parse_iso


def _get(headers: Mapping[str, str], name: str) -> str | None:
    """A header by name, whatever its case (httpx's headers already ignore case)."""
    value = headers.get(name)
    if value is None:
        wanted = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == wanted), None)
    return value.strip() if value else None


def mastodon_reset(headers: Mapping[str, str]) -> datetime | None:
    """``X-RateLimit-Reset: 2026-03-01T10:05:00.000000Z`` as an aware UTC datetime."""
    value = _get(headers, "X-RateLimit-Reset")
    if not value:
        return None
    try:
        return parse_iso(value)
    except ValueError:
        return None


def retry_after(value: str | None, now: datetime) -> datetime | None:
    """``Retry-After`` in seconds or as an HTTP date (RFC 9110 allows both)."""
    if not value:
        return None
    if value.isdigit():
        return now + timedelta(seconds=int(value))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)


def atproto_reset(headers: Mapping[str, str], now: datetime) -> datetime | None:
    """``RateLimit-Reset`` (epoch seconds, an absolute instant, so preferred), else
    ``Retry-After`` counted from ``now``."""
    value = _get(headers, "RateLimit-Reset")
    if value and value.isdigit():
        return datetime.fromtimestamp(int(value), tz=UTC)
    return retry_after(_get(headers, "Retry-After"), now)
