"""Rebuilding a world from what a run recorded, so that an in-process sandbox can be resumed.

An in-process sandbox lives in the runner's process and dies with it (Ctrl-C, SIGTERM,
SIGKILL). Rather than persisting it beside the store — a second copy of the truth that a kill
could leave a step behind or ahead of the store — the world is rebuilt from the store, which
already is the durable record of what the world was told.

Why a rebuild gives back the very same world: everything that decides a post's id and its
brand's replies is a function of the world's spec (seed, brands, start), the post's text, the
virtual instant it arrived, and the order posts arrived in (ids within one millisecond are handed
out in order). Fates never see wall time or anything random beyond the seed (:mod:`brands`).
A run records each sent probe's text, platform time and id, so posting the same texts at the
same instants, in the same order, into a fresh world of the same spec makes the same posts, the
same ids and the same replies, with their future times and ids.

Nothing is taken on trust: each replayed post must come back with the id the store recorded,
and every reply the store recorded must exist with its recorded id and time. Any difference
means a different world (say, another version of the simulated brands), and :class:`DifferentWorld`
is raised rather than a study being finished against brands it never asked.

What a rebuild does not bring back, by design: a send that reached the dead world but never the
store (a probe left ``sending``); the runner looks for it on our own timeline, as after any crash
(DESIGN.md rule 3), finds it absent and sends it again, at the same instant, because the clock is
put back where the store's last record left it (:attr:`History.now`). Posts made through the
control plane (crowd mentions, hand posts) cannot exist in an in-process sandbox: nobody but its
run knows its address.

Details of our own posts that no view used for timing shows and a store does not keep take the
values mystery's channels send: a Mastodon status is ``unlisted``; a Bluesky record claims as its
``createdAt`` the instant it was indexed (a claim, never a time mystery records).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from mystery.clock import iso, utc
from mystery.sandbox.bluesky_records import POST, mention_facets, publish, uri_of
from mystery.sandbox.mastodon_api import publish_status
from mystery.sandbox.world import World, WorldError

MASTODON_VISIBILITY = "unlisted"
"""What mystery's Mastodon channel posts a probe as."""


class DifferentWorld(WorldError):
    """The rebuilt world is not the one the store's run talked to."""


@dataclass(frozen=True, slots=True)
class SentPost:
    """A post the researcher made (a probe), as the store recorded it."""

    channel: str  # "x", "mastodon" or "bluesky"
    message_id: str  # the platform's id: X post id, Mastodon status id, Bluesky at:// URI
    text: str  # exactly what the platform received
    at: datetime  # the platform's time of it
    label: str = ""  # how messages name it (the probe id)
    account: str = ""  # the researcher's account that posted it (a study with several)


@dataclass(frozen=True, slots=True)
class SeenReply:
    """A brand's reply (or direct message) the store recorded."""

    channel: str
    message_id: str
    created_at: datetime


@dataclass(frozen=True)
class History:
    """What a world must be rebuilt from.

    ``posts`` in the order the world received them (platform time, then the order of the sends);
    ``now``: the latest instant of the run's clock the store recorded, where the rebuilt clock
    is put: never behind it (a reply already recorded must be visible), never past it (the
    runner's clock never passed an event it had not done, and neither may the rebuilt one).
    """

    posts: Sequence[SentPost]
    replies: Sequence[SeenReply]
    now: datetime


def replay(world: World, history: History) -> None:
    """Post ``history`` into ``world`` (configured, empty) at its instants, check every id, and
    set the clock to ``history.now``. Raises :class:`DifferentWorld` on the first mismatch."""
    with world.lock:
        if world.posts or any(n.notes for n in world.networks.values()):
            raise WorldError("a world is rebuilt only from empty; this one holds posts already")
        for post in history.posts:
            if utc(post.at) < world.now():
                raise DifferentWorld(
                    f"{post.label or post.message_id} was posted at {iso(post.at)}, before the "
                    f"world's start or an earlier post ({iso(world.now())})"
                )
            world.advance_to(post.at)
            made = _post(world, post)
            if made != post.message_id:
                raise DifferentWorld(
                    f"{post.label or post.message_id} ({post.channel}, {iso(post.at)}) came "
                    f"back as {made}, not {post.message_id} as recorded"
                )
        for reply in history.replies:
            found = _reply_time(world, reply)
            if found != utc(reply.created_at):
                seen = "is missing" if found is None else f"is at {iso(found)}"
                raise DifferentWorld(
                    f"the {reply.channel} reply {reply.message_id}, recorded at "
                    f"{iso(reply.created_at)}, {seen}"
                )
        world.advance_to(history.now)


def _post(world: World, post: SentPost) -> str:
    """Make ``post`` as the platform's API makes a probe; the id the platform gives it."""
    if post.channel == "x":
        return str(world.create_post(world.researcher_named(post.account).id, post.text).id)
    net = world.network(post.channel)
    author = net.acting(post.account)  # the account that posted it (a study with several)
    if post.channel == "mastodon":
        return str(publish_status(net, post.text, None, MASTODON_VISIBILITY, author).key)
    if post.channel == "bluesky":
        mentioned, facets = mention_facets(net, post.text)
        record = {"$type": POST, "text": post.text, "createdAt": iso(post.at), "facets": facets}
        rkey = post.message_id.rsplit("/", 1)[-1]
        return uri_of(publish(net, post.text, mentioned, None, record, rkey, author))
    raise WorldError(f"the sandbox has no channel {post.channel!r}")


def _reply_time(world: World, reply: SeenReply) -> datetime | None:
    """The time of the reply with ``reply``'s id in ``world``, or None if there is none."""
    if reply.channel == "x":
        if not reply.message_id.isdigit():
            return None
        key = int(reply.message_id)
        x_post = world.posts.get(key)
        if x_post is not None:
            return x_post.created_at
        dm = world.dms.get(key)
        return dm.created_at if dm is not None else None
    net = world.networks.get(reply.channel)
    if net is None:
        return None
    if reply.channel == "mastodon":
        note = net.notes.get(int(reply.message_id)) if reply.message_id.isdigit() else None
    else:
        found = net.state.get("uris", {}).get(reply.message_id)
        note = net.notes.get(found) if found is not None else None
    return note.created_at if note is not None else None
