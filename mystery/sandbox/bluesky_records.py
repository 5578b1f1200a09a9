"""Bluesky records and the views of them the sandbox serves: record keys (TIDs), ``at://``
URIs, CIDs, post and profile views, and the check of a post's mention facets.

Why apart from the routes in :mod:`bluesky_api`: the ground truth (:mod:`inspection`) names
posts by the same URIs, and the data shapes are easier to read without the request handling.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from mystery.clock import iso
from mystery.sandbox.network import Member, Network, Note, digest32

POST = "app.bsky.feed.post"
TID_CHARS = "234567abcdefghijklmnopqrstuvwxyz"


class FacetError(ValueError):
    """A facet the sandbox refuses (answered as ``400 InvalidRequest``)."""


def tid(when: datetime, clock_id: int) -> str:
    """A TID: 53 bits of microseconds since the epoch and 10 bits of clock id, base32-sortable."""
    value = (int(when.timestamp() * 1_000_000) << 10) | (clock_id & 0x3FF)
    out = ""
    for _ in range(13):
        value, digit = divmod(value, 32)
        out = TID_CHARS[digit] + out
    return out


def uri_of(note: Note) -> str:
    rkey = note.extra.get("rkey") or tid(note.created_at, note.key)
    return f"at://{note.author.id}/{POST}/{rkey}"


def cid_of(note: Note) -> str:
    return "bafyrei" + digest32(f"{uri_of(note)}\x1f{note.text}", 52)


def ref(net: Network, key: int) -> dict[str, str]:
    note = net.notes[key]
    return {"uri": uri_of(note), "cid": cid_of(note)}


def register(net: Network, note: Note) -> None:
    """Give a note its record key and record, and index it by URI."""
    if "rkey" not in note.extra:
        note.extra["rkey"] = tid(note.created_at, note.key)
    if "record" not in note.extra:  # a brand's reply: its client's record
        skew = timedelta(milliseconds=200 + note.key % 1800)  # the brand's clock runs ahead
        record: dict[str, Any] = {
            "$type": POST,
            "text": note.text,
            "createdAt": iso(note.created_at + skew),
            "langs": ["en"],
        }
        if note.parent is not None and note.root is not None:
            record["reply"] = {"root": ref(net, note.root), "parent": ref(net, note.parent)}
        mentioned = [net.members[m] for m in note.mentions]
        if mentioned:  # the researcher account it answers, as a client writes the mention
            record["facets"] = []
            for member in mentioned:
                mention = f"@{member.handle}".encode()
                start = note.text.encode().find(mention)
                record["facets"].append(facet(start, start + len(mention), member.id))
        note.extra["record"] = record
    net.state.setdefault("uris", {})[uri_of(note)] = note.key


def publish(net: Network, text: str, mentioned: list[Member], parent: Note | None,
            record: dict[str, Any], rkey: str | None, author: Member | None = None) -> Note:
    """A researcher account's post (``author``, by default the researcher), as
    ``createRecord`` makes it once the request is checked (with its brand's replies
    registered by URI too); also how a rebuilt world posts it again
    (:mod:`mystery.sandbox.replay`)."""
    note = net.post(author or net.researcher, text, mentioned, parent, {"record": record})
    if rkey is not None:
        note.extra["rkey"] = rkey
    register(net, note)
    for key in note.reply_keys:
        register(net, net.notes[key])
    return note


def mention_facets(net: Network, text: str) -> tuple[list[Member], list[dict[str, Any]]]:
    """The members ``text`` mentions as ``@handle`` and the facets a client would send for
    them (UTF-8 byte offsets, end exclusive), for a post whose request is not at hand."""
    mentioned: list[Member] = []
    facets: list[dict[str, Any]] = []
    for member in net.members.values():
        found = re.search(rf"(?<![\w@.])@{re.escape(member.handle)}(?![\w-]|\.\w)", text,
                          re.IGNORECASE)
        if found is not None:
            start = len(text[: found.start()].encode())
            mentioned.append(member)
            facets.append(facet(start, start + len(found.group(0).encode()), member.id))
    return mentioned, facets


def facet(start: int, end: int, did: str) -> dict[str, Any]:
    return {
        "index": {"byteStart": start, "byteEnd": end},
        "features": [{"$type": "app.bsky.richtext.facet#mention", "did": did}],
    }


def find(net: Network, uri: str) -> Note | None:
    """The visible note at ``uri``."""
    key = net.state.get("uris", {}).get(uri)
    return net.note(key) if key is not None else None


def profile(member: Member) -> dict[str, Any]:
    return {"did": member.id, "handle": member.handle, "displayName": member.name, "labels": []}


def post_view(note: Note) -> dict[str, Any]:
    return {
        "uri": uri_of(note),
        "cid": cid_of(note),
        "author": profile(note.author),
        "record": note.extra["record"],
        "replyCount": 0,
        "repostCount": 0,
        "likeCount": 0,
        "quoteCount": 0,
        "indexedAt": iso(note.created_at),
        "labels": [],
    }


def check_facets(net: Network, text: str, facets: Any) -> list[Member]:
    """The members the facets mention; a facet whose bytes do not spell ``@handle`` is refused."""
    if facets is None:
        return []
    if not isinstance(facets, list):
        raise FacetError("record/facets must be an array")
    data = text.encode()
    mentioned: list[Member] = []
    for n, facet in enumerate(facets):
        index = facet.get("index") if isinstance(facet, dict) else None
        start = index.get("byteStart") if isinstance(index, dict) else None
        end = index.get("byteEnd") if isinstance(index, dict) else None
        if not isinstance(start, int) or not isinstance(end, int) or not 0 <= start < end:
            raise FacetError(f"record/facets/{n}/index is invalid")
        for feature in facet.get("features") or []:
            if feature.get("$type") != "app.bsky.richtext.facet#mention":
                continue
            member = net.members.get(str(feature.get("did")))
            if member is None:
                continue
            covered = data[start:end].decode("utf-8", "replace")
            if end > len(data) or covered != f"@{member.handle}":
                raise FacetError(
                    f"record/facets/{n}: bytes {start}-{end} hold {covered!r}, not "
                    f"'@{member.handle}' (offsets count UTF-8 bytes, end exclusive)"
                )
            mentioned.append(member)
    return mentioned
