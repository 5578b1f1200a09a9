"""The sandbox's state: accounts, posts, their indexes, and the virtual clock they live on.

Why replies exist before they are visible: a brand's replies are decided and given their ids the
moment the probe arrives (see :mod:`mystery.sandbox.brands`); "now" only decides which of them
can be seen. Because a post id is a snowflake of its creation time and ids within a millisecond
are handed out in order, visibility is one comparison (``id <= ceiling(now)``) and a reply that
appears later always has a higher id than anything already returned: a client polling with
``since_id`` can never miss one.

Why sorted id lists per user: every timeline query becomes a pair of bisects plus a page walk,
so a 10,000-probe study costs the same per request at its end as at its start.

A brand that answers by direct message (``dm_share``) gets a :class:`DirectMessage` instead of
its answering post, with an id from the same generator: DM event ids are snowflakes on X too, so
the same visibility bound and the same "later means higher" promise hold for DMs.

One re-entrant lock guards the state; the HTTP threads hold it for the length of a request.
"""

from __future__ import annotations

import hashlib
import re
import threading
import uuid
from bisect import insort
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from mystery.clock import TWITTER_EPOCH_MS, VirtualClock, iso, make_snowflake, utc
from mystery.errors import SandboxError
from mystery.sandbox.brands import Fate, ReplyKind, decide_fate
from mystery.sandbox.network import Network, make_networks
from mystery.sandbox.spec import BrandSpec, WorldSpec

MENTION = re.compile(r"(?<![\w@])@(\w+)")

CROWD = "sandbox_crowd"
"""The account behind :meth:`World.add_crowd`'s unrelated mentions."""

_IDS_PER_MS = 1 << 22
"""Worker and sequence bits together: how many posts one millisecond can hold."""


class WorldError(SandboxError):
    """A request the world cannot honour (mapped to an HTTP error by the routes)."""


class NoWorld(WorldError):
    def __init__(self) -> None:
        super().__init__("the sandbox has no world yet: PUT /_sandbox/world first")


class WorldConflict(WorldError):
    """A different world already exists; a sandbox holds one world for its whole life."""


class DuplicateContent(WorldError):
    def __init__(self) -> None:
        super().__init__("You are not allowed to create a Tweet with duplicate content.")


class UnknownPost(WorldError):
    """A referenced post does not exist (or is not visible yet)."""


def user_id_for(username: str) -> str:
    """A stable 16-digit id per username, so ids survive sandbox restarts and body order."""
    digest = hashlib.sha256(f"mystery-sandbox-user\x1f{username.casefold()}".encode()).digest()
    return str(10**15 + int.from_bytes(digest[:8], "big") % (9 * 10**15))


def ms_floor(when: datetime) -> datetime:
    when = utc(when)
    return when.replace(microsecond=when.microsecond // 1000 * 1000)


def first_id_at(when: datetime) -> int:
    """The smallest id a post created at ``when`` (to the ms) can have."""
    return make_snowflake(utc(when), worker=0, sequence=0)


def ceiling_at(when: datetime) -> int:
    """The largest id a post created at or before ``when`` can have: the visibility bound."""
    return first_id_at(when) | (_IDS_PER_MS - 1)


@dataclass(frozen=True, slots=True)
class Account:
    id: str
    username: str
    name: str
    brand: str | None = None


@dataclass(slots=True)
class Post:
    """A post: a researcher's probe or follow-up, or a brand's reply (``kind``)."""

    id: int
    author_id: str
    text: str
    created_at: datetime
    conversation_id: int
    in_reply_to_user_id: str | None = None
    replied_to: int | None = None
    brand: str | None = None
    kind: str = "post"
    fate: Fate | None = None
    reply_ids: tuple[int, ...] = ()
    edits: tuple[int, ...] = ()  # X's edit_history_tweet_ids: every version, oldest first


@dataclass(frozen=True, slots=True)
class DirectMessage:
    """A brand's direct message to the researcher (a ``MessageCreate`` event), answering
    ``probe``, the post it acknowledged in public."""

    id: int
    sender_id: str
    recipient_id: str
    text: str
    created_at: datetime
    probe: int
    brand: str | None

    @property
    def conversation_id(self) -> str:
        """X's id of a one-to-one conversation: both user ids, lower first, joined by ``-``."""
        low, high = sorted((self.sender_id, self.recipient_id), key=int)
        return f"{low}-{high}"


class World:
    """Everything the sandbox knows. Created empty; :meth:`configure` populates it once."""

    def __init__(self, clock: VirtualClock | None = None) -> None:
        epoch = datetime.fromtimestamp(TWITTER_EPOCH_MS / 1000, tz=UTC)
        self.clock = clock if clock is not None else VirtualClock(epoch)
        self.lock = threading.RLock()
        self.spec: WorldSpec | None = None
        # Who this world is: a fresh id each time a world is made, so that a store can tell
        # the world it sent to from one that merely has the same study (a restarted sandbox).
        self.id = ""
        self._researcher: Account | None = None
        self._team: dict[str, Account] = {}  # every researcher account on X, by name
        self.accounts: dict[str, Account] = {}
        self._by_name: dict[str, Account] = {}
        self._brands: dict[str, BrandSpec] = {}
        self.posts: dict[int, Post] = {}
        self.all_ids: list[int] = []
        self.by_author: defaultdict[str, list[int]] = defaultdict(list)
        self.mentions_of: defaultdict[str, list[int]] = defaultdict(list)
        self.by_conversation: defaultdict[int, list[int]] = defaultdict(list)
        self.received: list[int] = []
        self.dms: dict[int, DirectMessage] = {}
        self.dm_ids: list[int] = []  # every DM to the researcher, sorted: the DM inbox
        self._texts: set[tuple[str, str]] = set()
        self._sequence: dict[int, int] = {}
        self.networks: dict[str, Network] = {}  # Mastodon and Bluesky (see network.py)

    # -- the world itself ------------------------------------------------------------------

    def configure(self, spec: WorldSpec) -> bool:
        """Create the world; ``False`` if this very world exists already (idempotent)."""
        with self.lock:
            if self.spec is not None:
                if self.spec.canonical() == spec.canonical():
                    return False
                raise WorldConflict(
                    f"the sandbox already holds another world (seed {self.spec.seed}, start "
                    f"{iso(self.spec.start)}, {len(self.spec.brands)} brands); send the same "
                    "world again, or restart the sandbox to run a different one"
                )
            x_researcher = spec.researcher.get("x")
            accounts: list[Account] = []
            if x_researcher:  # a world may hold only Mastodon or Bluesky
                for handle in [x_researcher, *spec.team.get("x", [])]:
                    accounts.append(Account(user_id_for(handle), handle, handle))
            for brand in spec.brands:
                accounts += [
                    Account(user_id_for(h), h, brand.name, brand.name) for h in brand.x_handles
                ]
                self._brands[brand.name] = brand
            for account in accounts:
                if account.id in self.accounts:
                    raise WorldConflict(f"user id collision for @{account.username}; rename it")
                self.accounts[account.id] = account
                self._by_name[account.username.casefold()] = account
            self.clock.set(spec.start)
            self._researcher = accounts[0] if x_researcher else None
            team = len(spec.team.get("x", [])) + 1 if x_researcher else 0
            self._team = {a.username.casefold(): a for a in accounts[:team]}
            self.networks = make_networks(spec, self.clock)
            self.spec = spec
            self.id = uuid.uuid4().hex
            return True

    @property
    def configured(self) -> WorldSpec:
        """The world's spec; raises :class:`NoWorld` before ``PUT /_sandbox/world``."""
        if self.spec is None:
            raise NoWorld()
        return self.spec

    def network(self, name: str) -> Network:
        """The world's Mastodon or Bluesky: :class:`NoWorld` before the world exists,
        :class:`WorldError` when the researcher has no account there."""
        self.configured  # noqa: B018 - raises NoWorld before PUT /_sandbox/world
        found = self.networks.get(name)
        if found is None:
            raise WorldError(
                f"this world has no {name} account for the researcher: add it to researcher"
            )
        return found

    @property
    def researcher(self) -> Account:
        """The single account every X request acts as."""
        if self._researcher is None:
            raise NoWorld()
        return self._researcher

    def acting(self, authorization: str) -> Account:
        """The researcher account a request acts as: the one its bearer token names
        (``sandbox:<account>``, what mystery sends for a study with several accounts), else
        :attr:`researcher`. Tokens are not secrets in the sandbox."""
        _, _, token = authorization.partition(" ")
        prefix, _, name = token.strip().partition(":")
        return self.researcher_named(name) if prefix == "sandbox" else self.researcher

    def researcher_named(self, name: str) -> Account:
        """The researcher's X account ``name`` (a study with several), else :attr:`researcher`."""
        found = self._team.get(name.casefold())
        return found if found is not None else self.researcher

    def is_researcher(self, user_id: str) -> bool:
        """Whether ``user_id`` is one of the researcher's accounts."""
        return any(a.id == user_id for a in self._team.values())

    def user(self, user_id: str) -> Account | None:
        return self.accounts.get(user_id)

    def user_by_name(self, username: str) -> Account | None:
        return self._by_name.get(username.casefold())

    # -- time ------------------------------------------------------------------------------

    def now(self) -> datetime:
        return self.clock.now()

    def advance_to(self, when: datetime) -> datetime:
        """Move the clock forward (never back) and return the new now."""
        self.clock.sleep_until(when)
        return self.clock.now()

    def advance_by(self, delta: timedelta) -> datetime:
        return self.advance_to(self.clock.now() + delta)

    def ceiling(self) -> int:
        """Posts with an id up to this are visible now."""
        return ceiling_at(self.clock.now())

    def visible(self, post: Post) -> bool:
        return post.id <= self.ceiling()

    # -- posting ---------------------------------------------------------------------------

    def _allocate(self, when: datetime) -> int:
        """A fresh snowflake for ``when``; ids within one millisecond are handed out in order."""
        ms = (utc(when) - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
        n = self._sequence.get(ms, 0)
        if n >= _IDS_PER_MS:
            raise WorldError("more than 4 million posts in one millisecond")
        self._sequence[ms] = n + 1
        return make_snowflake(utc(when), worker=n >> 12, sequence=n & 0xFFF)

    def _store(self, post: Post, mentioned: list[Account]) -> None:
        self.posts[post.id] = post
        insort(self.all_ids, post.id)
        insort(self.by_author[post.author_id], post.id)
        insort(self.by_conversation[post.conversation_id], post.id)
        for account in mentioned:
            if account.id != post.author_id:
                insort(self.mentions_of[account.id], post.id)

    def _mentioned(self, text: str) -> list[Account]:
        found: dict[str, Account] = {}
        for name in MENTION.findall(text):
            account = self._by_name.get(name.casefold())
            if account is not None:
                found.setdefault(account.id, account)
        return list(found.values())

    def create_post(self, author_id: str, text: str, in_reply_to: int | None = None,
                    at: datetime | None = None) -> Post:
        """Record a post made now (or at ``at``, later: a researcher posting by hand in a
        test, which stays invisible until the clock reaches it); if it is a fresh post
        mentioning a brand, plan the brand's replies. Raises :class:`DuplicateContent` or
        :class:`UnknownPost`."""
        with self.lock:
            spec = self.configured
            if at is not None and utc(at) < self.clock.now():
                raise WorldError(f"cannot post in the past ({iso(at)}); the clock is at "
                                 f"{iso(self.clock.now())}")
            if (author_id, text) in self._texts:
                raise DuplicateContent()
            parent = self.posts.get(in_reply_to) if in_reply_to is not None else None
            if in_reply_to is not None and (parent is None or not self.visible(parent)):
                raise UnknownPost(f"the post {in_reply_to} you reply to does not exist")
            now = ms_floor(at if at is not None else self.clock.now())
            post_id = self._allocate(now)
            mentioned = self._mentioned(text)
            brand = next((a.brand for a in mentioned if a.brand is not None), None)
            post = Post(
                id=post_id,
                author_id=author_id,
                text=text,
                created_at=now,
                conversation_id=parent.conversation_id if parent else post_id,
                in_reply_to_user_id=parent.author_id if parent else None,
                replied_to=parent.id if parent else None,
                brand=brand,
            )
            self._texts.add((author_id, text))
            self._store(post, mentioned)
            self.received.append(post.id)
            if brand is not None and parent is None:
                fate = decide_fate(spec.seed, self._brands[brand], text, now, spec.zone, dms=True)
                post.fate = fate
                post.reply_ids = tuple(
                    self._direct(post, r.handle, r.message, r.at).id
                    if r.direct
                    else self._reply(post, r.kind, r.handle, r.message, r.at).id
                    for r in fate.replies
                )
            return post

    def edit_post(self, post_id: int, text: str) -> Post:
        """The researcher edits post ``post_id`` now, as X allows: the edit is a new post
        with a new id, both versions carry the whole edit history, and what the brand posts
        from now on answers the latest version (its id as ``conversation_id`` and replied-to),
        while what it posted already stays where it was. Raises :class:`UnknownPost`."""
        with self.lock:
            original = self.posts.get(post_id)
            if (original is None or original.kind != "post"
                    or not self.is_researcher(original.author_id)):
                raise UnknownPost(f"no post {post_id} of the researcher's to edit")
            first = self.posts[original.edits[0]] if original.edits else original
            now = ms_floor(self.clock.now())
            edit = Post(id=self._allocate(now), author_id=original.author_id, text=text,
                        created_at=now, conversation_id=0, brand=original.brand, kind="edit")
            edit.conversation_id = edit.id
            chain = (*(first.edits or (first.id,)), edit.id)
            for version in (*(self.posts[i] for i in chain[:-1]), edit):
                version.edits = chain
            self._texts.add((edit.author_id, text))
            self._store(edit, self._mentioned(text))
            for reply_id in first.reply_ids:
                reply = self.posts.get(reply_id)
                if reply is not None and reply.created_at > now:
                    self.by_conversation[reply.conversation_id].remove(reply.id)
                    reply.conversation_id = reply.replied_to = edit.id
                    insort(self.by_conversation[edit.id], reply.id)
            return edit

    def add_crowd(self, count: int, start: datetime, end: datetime) -> list[int]:
        """``count`` mentions of the researcher by an unrelated account, evenly spread over
        ``[start, end)``: traffic that is nobody's reply, so a long downtime can push brand
        replies beyond what the mentions timeline reaches."""
        with self.lock:
            researcher = self.researcher
            crowd = self._by_name.get(CROWD.casefold())
            if crowd is None:
                crowd = Account(user_id_for(CROWD), CROWD, "Sandbox crowd")
                if crowd.id in self.accounts:
                    raise WorldConflict(f"user id collision for @{CROWD}")
                self.accounts[crowd.id] = crowd
                self._by_name[CROWD.casefold()] = crowd
            step = (utc(end) - utc(start)) / count
            first = len(self.by_author.get(crowd.id, []))
            ids = []
            for i in range(count):
                at = ms_floor(utc(start) + step * i)
                post_id = self._allocate(at)
                post = Post(post_id, crowd.id, f"@{researcher.username} crowd post {first + i}",
                            at, post_id, kind="crowd")
                self._store(post, [researcher])
                ids.append(post_id)
            return ids

    def _reply(self, probe: Post, kind: ReplyKind, handle: str, message: str, at: datetime) -> Post:
        author = self._by_name[handle.casefold()]
        asker = self.accounts[probe.author_id]
        reply = Post(
            id=self._allocate(at),
            author_id=author.id,
            text=f"@{asker.username} {message}",
            created_at=at,
            conversation_id=probe.conversation_id,
            in_reply_to_user_id=asker.id,
            replied_to=probe.id,
            brand=author.brand,
            kind=kind,
        )
        self._store(reply, [asker])
        return reply

    def _direct(self, probe: Post, handle: str, message: str, at: datetime) -> DirectMessage:
        sender = self._by_name[handle.casefold()]
        dm = DirectMessage(
            id=self._allocate(at),
            sender_id=sender.id,
            recipient_id=probe.author_id,
            text=message,
            created_at=at,
            probe=probe.id,
            brand=sender.brand,
        )
        self.dms[dm.id] = dm
        insort(self.dm_ids, dm.id)
        return dm
