"""Ground truth for tests: every post the sandbox received and every reply it has produced.

Why a separate view with millisecond times: the X API rounds ``created_at`` to the second, and a
test of rule 1 ("times come from the platform") must compare what the runner recorded with what
really happened, to the millisecond. Fates (including replies still in the future) are shown so a
test can also check what the runner *should* eventually see.

A brand's direct message is listed among the replies (``"direct": true``, answering ``probe``):
when a brand resolves by DM, the post's ``resolution_at`` is the DM's time.
"""

from __future__ import annotations

from typing import Any

from mystery.clock import iso
from mystery.sandbox.network import Network, Note
from mystery.sandbox.world import DirectMessage, Post, World


def _post(world: World, post: Post) -> dict[str, Any]:
    author = world.accounts[post.author_id]
    fate = post.fate
    return {
        "channel": "x",
        "id": str(post.id),
        "author": author.username,
        "author_id": author.id,
        "text": post.text,
        "created_at": iso(post.created_at),
        "brand": post.brand,
        "in_reply_to": str(post.replied_to) if post.replied_to is not None else None,
        "edits": [str(i) for i in post.edits],
        "fate": None
        if fate is None
        else {
            "answers": fate.answers,
            "ack_at": iso(fate.ack_at) if fate.ack_at else None,
            "resolution_at": iso(fate.resolution_at) if fate.resolution_at else None,
            "reply_ids": [str(i) for i in post.reply_ids],
        },
    }


def _reply(world: World, post: Post) -> dict[str, Any]:
    return {
        "channel": "x",
        "id": str(post.id),
        "author": world.accounts[post.author_id].username,
        "author_id": post.author_id,
        "brand": post.brand,
        "kind": post.kind,
        "text": post.text,
        "created_at": iso(post.created_at),
        "in_reply_to": str(post.replied_to),
        "conversation_id": str(post.conversation_id),
        "direct": False,
    }


def _dm(world: World, dm: DirectMessage) -> dict[str, Any]:
    return {
        "channel": "x",
        "id": str(dm.id),
        "author": world.accounts[dm.sender_id].username,
        "author_id": dm.sender_id,
        "brand": dm.brand,
        "kind": "answer",
        "text": dm.text,
        "created_at": iso(dm.created_at),
        "in_reply_to": None,
        "conversation_id": dm.conversation_id,
        "direct": True,
        "probe": str(dm.probe),
    }


def ground_truth(world: World) -> dict[str, Any]:
    """``{"now", "posts": [...], "replies": [...]}``; replies only once the clock reached them,
    both lists oldest first. The crowd's unrelated mentions (``POST /_sandbox/crowd``) are
    nobody's reply and are left out, as are the researcher's edits of a post (the post's
    ``edits`` lists every version)."""
    with world.lock:
        ceiling = world.ceiling()
        received = set(world.received)
        posts = [_post(world, world.posts[i]) for i in world.received]
        replies = [
            _reply(world, world.posts[i])
            for i in world.all_ids
            if i <= ceiling and i not in received and world.posts[i].kind not in ("crowd", "edit")
        ]
        replies += [_dm(world, world.dms[i]) for i in world.dm_ids if i <= ceiling]
        for network in world.networks.values():
            posts += [_note(network, network.notes[k]) for k in network.received]
            replies += [
                _note(network, note)
                for note in network.notes.values()
                if not network.is_researcher(note.author) and network.visible(note.key)
            ]
        posts.sort(key=lambda p: p["created_at"])  # stable: each channel is in order already
        replies.sort(key=lambda r: r["created_at"])
        return {"now": iso(world.now()), "posts": posts, "replies": replies}


def _note(network: Network, note: Note) -> dict[str, Any]:
    """A Mastodon or Bluesky post or reply, with ids as the platform shows them (a status id,
    an ``at://`` URI) and times to the millisecond (``created_at``; Bluesky's ``indexedAt``)."""
    from mystery.sandbox.bluesky_records import uri_of

    def ident(key: int) -> str:
        return uri_of(network.notes[key]) if network.name == "bluesky" else str(key)

    out: dict[str, Any] = {
        "channel": network.name,
        "id": ident(note.key),
        "author": note.author.handle,
        "author_id": note.author.id,
        "text": note.text,
        "created_at": iso(note.created_at),
        "brand": note.brand,
        "in_reply_to": ident(note.parent) if note.parent is not None else None,
    }
    if network.is_researcher(note.author):
        fate = note.fate
        out["fate"] = None if fate is None else {
            "answers": fate.answers,
            "ack_at": iso(fate.ack_at) if fate.ack_at else None,
            "resolution_at": iso(fate.resolution_at) if fate.resolution_at else None,
            "reply_ids": [ident(k) for k in note.reply_keys],
        }
    else:
        out["kind"] = note.kind
        out["conversation_id"] = ident(note.thread)
    return out
