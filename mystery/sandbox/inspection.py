"""Ground truth for tests: every post the sandbox received and every reply it has produced.

Why a separate view with millisecond times: the X API rounds ``created_at`` to the second, and a
test of rule 1 ("times come from the platform") must compare what the runner recorded with what
really happened, to the millisecond. Fates (including replies still in the future) are shown so a
test can also check what the runner *should* eventually see.
"""

from __future__ import annotations

from typing import Any

from mystery.clock import iso
from mystery.sandbox.world import Post, World


def _post(world: World, post: Post) -> dict[str, Any]:
    author = world.accounts[post.author_id]
    fate = post.fate
    return {
        "id": str(post.id),
        "author": author.username,
        "author_id": author.id,
        "text": post.text,
        "created_at": iso(post.created_at),
        "brand": post.brand,
        "in_reply_to": str(post.replied_to) if post.replied_to is not None else None,
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
        "id": str(post.id),
        "author": world.accounts[post.author_id].username,
        "author_id": post.author_id,
        "brand": post.brand,
        "kind": post.kind,
        "text": post.text,
        "created_at": iso(post.created_at),
        "in_reply_to": str(post.replied_to),
        "conversation_id": str(post.conversation_id),
    }


def ground_truth(world: World) -> dict[str, Any]:
    """``{"now", "posts": [...], "replies": [...]}``; replies only once the clock reached them,
    both lists oldest first."""
    with world.lock:
        ceiling = world.ceiling()
        received = set(world.received)
        posts = [_post(world, world.posts[i]) for i in world.received]
        replies = [
            _reply(world, world.posts[i])
            for i in world.all_ids
            if i <= ceiling and i not in received
        ]
        return {"now": iso(world.now()), "posts": posts, "replies": replies}
