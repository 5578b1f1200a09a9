"""X post ids are snowflakes: the top bits carry the creation time in milliseconds.

This is why mystery takes X times from ids and not from ``created_at`` (which the API rounds to
``.000``): ``(id >> 22) + epoch`` is the platform's own clock to the millisecond.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

TWITTER_EPOCH_MS = 1288834974657  # 2010-11-04T01:42:54.657Z
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def snowflake_ms(post_id: str | int) -> int:
    return (int(post_id) >> 22) + TWITTER_EPOCH_MS


def snowflake_time(post_id: str | int) -> datetime:
    return datetime.fromtimestamp(snowflake_ms(post_id) / 1000, tz=UTC)


def make_snowflake(when: datetime, worker: int = 1, sequence: int = 0) -> int:
    """The id a post created at ``when`` gets (the sandbox's generator)."""
    ms = (when - _EPOCH) // timedelta(milliseconds=1)
    return ((ms - TWITTER_EPOCH_MS) << 22) | ((worker & 0x3FF) << 12) | (sequence & 0xFFF)
