"""AT Protocol wire details the Bluesky channel needs, kept free of I/O so they can be checked
alone: mention facets with UTF-8 byte offsets, TIDs as record keys, XRPC error bodies.

Why byte offsets: a facet's ``byteStart``/``byteEnd`` count UTF-8 bytes, not characters, so an
accent or an emoji before a mention shifts it (``é`` is 2 bytes, ``☕`` 3, a family emoji 18).
Why a TID derived from the probe: a record key chosen by us makes a second create of the same
probe collide with the first instead of posting it twice.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import httpx

MENTION = "app.bsky.richtext.facet#mention"
_TID = "234567abcdefghijklmnopqrstuvwxyz"
_TID_FROM = 1_672_531_200_000_000  # 2023-01-01 in microseconds
_TID_SPAN = 10 * 365 * 24 * 3600 * 1_000_000


def mention_facet(text: str, handle: str, did: str) -> dict[str, Any]:
    """The mention facet for the first ``@handle`` in ``text``, with UTF-8 byte offsets
    (``byteEnd`` exclusive), as the lexicon ``app.bsky.richtext.facet`` wants them."""
    found = re.search(rf"(?<![\w@.])@{re.escape(handle)}(?![\w-]|\.\w)", text, re.IGNORECASE)
    if found is None:
        raise ValueError(f"the text does not mention @{handle}")
    start = len(text[: found.start()].encode())
    end = start + len(found.group(0).encode())
    return {"index": {"byteStart": start, "byteEnd": end},
            "features": [{"$type": MENTION, "did": did}]}  # fmt: skip


def tid(value: int) -> str:
    """A 64-bit value as a TID: 13 characters of base32-sortable, the first bit zero."""
    value &= (1 << 63) - 1
    return "".join(_TID[(value >> (5 * (12 - i))) & 31] for i in range(13))


def probe_rkey(did: str, probe_id: str, text: str) -> str:
    """The record key of a probe's post: a valid TID, the same on every attempt.

    Its "time" bits are a hash spread over 2023–2032, not a time: record keys are never read as
    timestamps (Bluesky's advice), they only have to be well formed and unique.
    """
    digest = hashlib.sha256(f"mystery\x1f{did}\x1f{probe_id}\x1f{text}".encode()).digest()
    number = int.from_bytes(digest[:16], "big")
    micros = _TID_FROM + number % _TID_SPAN
    return tid((micros << 10) | ((number >> 64) & 0x3FF))


def error_body(response: httpx.Response) -> dict[str, Any]:
    try:
        value = response.json()
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def error_name(response: httpx.Response) -> str:
    return str(error_body(response).get("error") or "") if response.status_code >= 400 else ""


def error_message(response: httpx.Response) -> str:
    return str(error_body(response).get("message") or response.text[:200])
