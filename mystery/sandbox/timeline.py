"""Reading a timeline page: newest first, inside an id range, from an id-sorted list.

Why every filter is an id range: ``since_id``/``until_id`` are ids, ``start_time``/``end_time``
map to the first id of their millisecond, visibility is a ceiling id, and a pagination token is
the id of the last post handed out. Two bisects find the range; the walk touches only the posts it
returns. Tokens are stateless (base36 of that id), so they stay valid across runner restarts and
while new posts arrive above them.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass

_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def encode_token(post_id: int) -> str:
    """A base36 pagination token (the OpenAPI ``PaginationToken36``) for ``post_id``."""
    out = ""
    while True:
        post_id, digit = divmod(post_id, 36)
        out = _DIGITS[digit] + out
        if post_id == 0:
            return out


def decode_token(token: str) -> int:
    """The id a token stands for; ``ValueError`` when it is not one of ours."""
    if not token or len(token) > 16:
        raise ValueError(token)
    return int(token, 36)


@dataclass(frozen=True, slots=True)
class Query:
    """Which part of a timeline to read.

    ``after`` is exclusive (0 for none), ``upto`` inclusive; ``cap`` keeps only the newest
    ``cap`` visible posts (the mentions timeline reaches 800 back, no further).
    """

    ceiling: int
    after: int = 0
    upto: int = (1 << 63) - 1
    cap: int | None = None
    limit: int = 10
    keep: Callable[[int], bool] | None = None


def read_page(ids: Sequence[int], query: Query) -> tuple[list[int], bool]:
    """The page's ids, newest first, and whether older matching posts remain."""
    visible_end = bisect_right(ids, query.ceiling)
    floor = max(0, visible_end - query.cap) if query.cap is not None else 0
    low = max(floor, bisect_right(ids, query.after))
    i = bisect_right(ids, min(query.upto, query.ceiling)) - 1
    keep = query.keep
    page: list[int] = []
    while i >= low and len(page) < query.limit:
        if keep is None or keep(ids[i]):
            page.append(ids[i])
        i -= 1
    if keep is None:
        return page, i >= low
    while i >= low:
        if keep(ids[i]):
            return page, True
        i -= 1
    return page, False
