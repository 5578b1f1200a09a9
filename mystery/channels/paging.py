"""Following a platform's page cursors without following one forever.

Why: a server that hands back the cursor it was just given (a bug, a proxy's cache, a hostile
endpoint) would keep a poll reading the same page until something outside stopped it, and
record nothing while it did. Every channel that pages walks through :class:`Pages`: a cursor
seen before, or more than :data:`MAX_PAGES` pages in one walk, is a :class:`TransientError`
(the runner backs off and reads again later), never an endless loop.
"""

from __future__ import annotations

from mystery.errors import TransientError

MAX_PAGES = 200
"""Pages one walk may read: 200 × 100 items is far past any platform's look-back."""


class Pages:
    """One walk through the pages of ``what`` (``"GET notifications"``), in the platform's
    words for the error. ``next(cursor)`` returns the cursor to ask with, once each."""

    def __init__(self, platform: str, what: str, limit: int = MAX_PAGES) -> None:
        self.platform, self.what, self.limit = platform, what, limit
        self._seen: set[str] = set()

    def next(self, cursor: str) -> str:
        if cursor in self._seen:
            raise TransientError(
                f"{self.platform} repeated a pagination cursor on {self.what}")
        if len(self._seen) + 1 >= self.limit:
            raise TransientError(
                f"{self.platform} kept paginating {self.what} past {self.limit} pages")
        self._seen.add(cursor)
        return cursor
