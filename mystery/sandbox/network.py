"""Mastodon and Bluesky inside the sandbox: one :class:`Network` each, on the world's clock.

Why one shape for both: what the runner measures is the same on every channel (a probe, the
brand's replies, the notifications that carry them to the researcher), and the brands' fates
come from the same :func:`~mystery.sandbox.brands.decide_fate` as on X. What differs is only how
a platform names and renders things, which stays in :mod:`mastodon_api` and :mod:`bluesky_api`.

Why time-ordered keys (Mastodon snowflakes: Unix milliseconds << 16 | a sequence): as on X, a
brand's replies are created the moment the probe arrives, with their future times, and "now"
only decides which are visible (``key <= ceiling(now)``). Notifications get keys of their own from
the same scheme, so a reply that becomes visible later always has a higher notification id than
anything already read: a client paging forward with ``min_id`` can never skip one.

A brand's second reply answers its own first one (a thread, as people reply), so a channel must
follow the thread to its root (Mastodon: the status context; Bluesky: ``reply.root``).

Why several researcher accounts (a team study's ``accounts = [...]``) are separate members with
separate inboxes: on the real platforms each researcher logs in as their own account, posts as
it, and reads only that account's notifications; a brand answers the account that asked. A
runner serving one account must therefore never see another account's replies, or it would
attribute them to the wrong probes.
"""

from __future__ import annotations

import hashlib
import re
from bisect import insort
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from mystery.clock import VirtualClock, utc
from mystery.sandbox.brands import Fate, decide_fate
from mystery.sandbox.spec import SANDBOX_DOMAIN, BrandSpec, WorldSpec

_PER_MS = 1 << 16
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_B32 = "abcdefghijklmnopqrstuvwxyz234567"


def unix_ms(when: datetime) -> int:
    return (utc(when) - _EPOCH) // timedelta(milliseconds=1)


def ceiling_key(when: datetime) -> int:
    """The largest key a note created at or before ``when`` can have: the visibility bound."""
    return ((unix_ms(when) + 1) * _PER_MS) - 1


class Keys:
    """Mastodon-style snowflakes, handed out in order within each millisecond."""

    def __init__(self) -> None:
        self._next: dict[int, int] = {}

    def allocate(self, when: datetime) -> int:
        ms = unix_ms(when)
        n = self._next.get(ms, 0)
        if n >= _PER_MS:
            raise ValueError("more than 65,536 posts in one millisecond")
        self._next[ms] = n + 1
        return ms * _PER_MS + n


def digest32(text: str, length: int) -> str:
    """``length`` base32 characters of a SHA-256: stable, opaque ids (DIDs, CIDs)."""
    number = int.from_bytes(hashlib.sha256(text.encode()).digest(), "big")
    out = ""
    for _ in range(length):
        number, digit = divmod(number, 32)
        out += _B32[digit]
    return out


@dataclass(frozen=True, slots=True)
class Member:
    """An account on a network. ``handle`` is as a study writes it (Mastodon: ``user@domain``)."""

    id: str
    handle: str
    name: str
    brand: str | None = None

    @property
    def local(self) -> str:
        """The part before ``@`` (a Mastodon username); the whole handle on Bluesky."""
        return self.handle.split("@", 1)[0]


@dataclass(slots=True)
class Note:
    """A post on a network: a researcher's probe, or a brand's reply (``kind``)."""

    key: int
    author: Member
    text: str
    created_at: datetime  # the platform's time: Mastodon ``created_at``, Bluesky ``indexedAt``
    parent: int | None = None
    root: int | None = None  # the thread's first post; None for a post that starts a thread
    brand: str | None = None
    kind: str = "post"
    mentions: tuple[str, ...] = ()  # member ids
    fate: Fate | None = None
    reply_keys: tuple[int, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)  # platform details (rkey, createdAt)

    @property
    def thread(self) -> int:
        return self.key if self.root is None else self.root


@dataclass(frozen=True, slots=True)
class Notification:
    key: int
    note: int
    reason: str  # "mention" or "reply"
    subject: int | None = None  # for "reply": the researcher's post that was replied to
    recipient: str = ""  # the member id of the researcher account it is for


class Network:
    """One platform's accounts, posts and notifications (the researcher accounts' only).

    ``mention_kinds``: which brand replies mention the researcher (Mastodon: every reply does,
    as its clients prefill the mention; Bluesky: only holding messages, so that answers arrive
    as ``reply`` notifications and the mention-over-reply dedup is exercised).
    ``reply_notifies``: whether a reply notifies the author of a post up the thread without a
    mention (Bluesky: yes, up to five levels; Mastodon: no).
    ``team``: every researcher account here (the spec's ``researcher`` first, then its
    ``team``), each with its own inbox of notifications; ``researcher`` is the first.
    """

    def __init__(
        self,
        name: str,
        spec: WorldSpec,
        clock: VirtualClock,
        *,
        member_id: Callable[[str], str],
        mention_kinds: frozenset[str],
        reply_notifies: bool,
    ) -> None:
        self.name = name
        self.spec = spec
        self.clock = clock
        self.mention_kinds = mention_kinds
        self.reply_notifies = reply_notifies
        self.domain = SANDBOX_DOMAIN
        researcher = spec.researcher[name]
        if name == "mastodon":
            user, _, domain = researcher.partition("@")
            self.domain = domain or SANDBOX_DOMAIN
            researcher = f"{user}@{self.domain}"
        self.members: dict[str, Member] = {}
        self._by_handle: dict[str, Member] = {}
        self.team: dict[str, Member] = {}  # every researcher account here, by member id
        for handle in [researcher, *spec.team.get(name, [])]:
            if name == "mastodon" and "@" not in handle:
                handle = f"{handle}@{self.domain}"
            member = Member(member_id(handle), handle, handle)
            self.team[member.id] = member
            self.members[member.id] = member
            self._by_handle[handle.casefold()] = member
        self.researcher = next(iter(self.team.values()))  # the spec's researcher account
        self._brands: dict[str, BrandSpec] = {}
        for brand in spec.brands:
            handles = brand.handles_on(name)
            if handles:
                self._brands[brand.name] = brand
            for handle in handles:
                if name == "mastodon" and "@" not in handle:
                    handle = f"{handle}@{self.domain}"
                member = Member(member_id(handle), handle, brand.name, brand.name)
                self.members[member.id] = member
                self._by_handle[handle.casefold()] = member
        self._keys = Keys()
        self._notification_keys = Keys()
        self.notes: dict[int, Note] = {}
        self.by_author: defaultdict[str, list[int]] = defaultdict(list)
        self.notifications: dict[int, Notification] = {}
        self.inboxes: defaultdict[str, list[int]] = defaultdict(list)  # by recipient, sorted
        self.received: list[int] = []
        self.state: dict[str, Any] = {}  # per-platform bookkeeping (sessions, idempotency keys)

    # -- lookups ---------------------------------------------------------------------------

    def member(self, handle: str) -> Member | None:
        handle = handle.strip().lstrip("@")
        if self.name == "mastodon" and "@" not in handle:
            handle = f"{handle}@{self.domain}"
        return self._by_handle.get(handle.casefold())

    def is_researcher(self, member: Member) -> bool:
        """Whether ``member`` is one of the researcher accounts (not a brand)."""
        return member.id in self.team

    def acting(self, handle: str) -> Member:
        """The researcher account ``handle`` names, else :attr:`researcher` (as X's
        :meth:`~mystery.sandbox.world.World.acting`: tokens are not secrets here)."""
        found = self.member(handle) if handle else None
        return found if found is not None and self.is_researcher(found) else self.researcher

    def inbox(self, member: Member) -> list[int]:
        """The keys of ``member``'s notifications, ascending (visible or not yet)."""
        return self.inboxes.get(member.id, [])

    def ceiling(self) -> int:
        return ceiling_key(self.clock.now())

    def visible(self, key: int) -> bool:
        return key <= self.ceiling()

    def note(self, key: int) -> Note | None:
        """A note that exists and can be seen now."""
        note = self.notes.get(key)
        return note if note is not None and self.visible(key) else None

    # -- posting ---------------------------------------------------------------------------

    def post(
        self,
        author: Member,
        text: str,
        mentions: list[Member],
        parent: Note | None = None,
        extra: dict[str, Any] | None = None,
    ) -> Note:
        """Record a post made now; a thread-starting post by a researcher account that mentions
        a brand gets that brand's fate, and its replies (to that account) are created at once,
        with future times."""
        now = self.clock.now()
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        brand = next((m.brand for m in mentions if m.brand is not None), None)
        note = Note(
            key=self._keys.allocate(now),
            author=author,
            text=text,
            created_at=now,
            parent=parent.key if parent else None,
            root=parent.thread if parent else None,
            brand=brand,
            mentions=tuple(dict.fromkeys(m.id for m in mentions)),
            extra=dict(extra or {}),
        )
        self._store(note)
        self.received.append(note.key)
        if brand is not None and parent is None and self.is_researcher(author):
            spec = self._brands[brand]
            fate = decide_fate(
                self.spec.seed, spec, text, now, self.spec.zone, spec.handles_on(self.name)
            )
            note.fate = fate
            replies: list[int] = []
            previous = note
            for planned in fate.replies:
                previous = self._reply(
                    note, previous, planned.kind, planned.handle, planned.message, planned.at
                )
                replies.append(previous.key)
            note.reply_keys = tuple(replies)
        return note

    def _reply(
        self, probe: Note, parent: Note, kind: str, handle: str, message: str, at: datetime
    ) -> Note:
        author = self.member(handle)
        assert author is not None, handle
        asker = probe.author
        mentions = (asker.id,) if kind in self.mention_kinds else ()
        prefix = f"@{asker.local} " if mentions else ""
        reply = Note(
            key=self._keys.allocate(at),
            author=author,
            text=prefix + message,
            created_at=at,
            parent=parent.key,
            root=probe.key,
            brand=author.brand,
            kind=kind,
            mentions=mentions,
        )
        self._store(reply)
        return reply

    def _store(self, note: Note) -> None:
        self.notes[note.key] = note
        insort(self.by_author[note.author.id], note.key)
        if self.is_researcher(note.author):
            return
        mentioned = [m for m in note.mentions if m in self.team]
        for recipient in mentioned:
            self._notify(note, "mention", None, recipient)
        if self.reply_notifies:
            subject = self._researchers_ancestor(note)
            if subject is not None and self.notes[subject].author.id not in mentioned:
                self._notify(note, "reply", subject, self.notes[subject].author.id)

    def _notify(self, note: Note, reason: str, subject: int | None, recipient: str) -> None:
        """One notification of ``note`` for the researcher account ``recipient``; a mention
        and a reply to the same account arrive once, as the mention (mentions win)."""
        key = self._notification_keys.allocate(note.created_at)
        self.notifications[key] = Notification(key, note.key, reason, subject, recipient)
        insort(self.inboxes[recipient], key)

    def _researchers_ancestor(self, note: Note, depth: int = 5) -> int | None:
        """The nearest post of a researcher account up the thread (Bluesky notifies five
        levels)."""
        key = note.parent
        while key is not None and depth > 0:
            parent = self.notes[key]
            if self.is_researcher(parent.author):
                return parent.key
            key, depth = parent.parent, depth - 1
        return None


MENTION = re.compile(r"(?<![\w@/])@([A-Za-z0-9_]+(?:@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)?)")
"""``@user`` or ``@user@domain`` in a Mastodon status, as the server's mention parser finds it."""


def mastodon_id(handle: str) -> str:
    """A stable numeric account id (Mastodon ids are strings of digits)."""
    digest = hashlib.sha256(f"mystery-sandbox-mastodon\x1f{handle.casefold()}".encode()).digest()
    return str(10**17 + int.from_bytes(digest[:8], "big") % (9 * 10**17))


def bluesky_did(handle: str) -> str:
    """A stable ``did:plc:`` of 24 base32 characters, the shape of real ones."""
    return "did:plc:" + digest32(f"mystery-sandbox-bluesky\x1f{handle.casefold()}", 24)


def make_networks(spec: WorldSpec, clock: VirtualClock) -> dict[str, Network]:
    """A network for each non-X channel the researcher has an account on."""
    networks: dict[str, Network] = {}
    if "mastodon" in spec.researcher:
        networks["mastodon"] = Network(
            "mastodon",
            spec,
            clock,
            member_id=mastodon_id,
            mention_kinds=frozenset({"holding", "answer"}),
            reply_notifies=False,
        )
    if "bluesky" in spec.researcher:
        networks["bluesky"] = Network(
            "bluesky",
            spec,
            clock,
            member_id=bluesky_did,
            mention_kinds=frozenset({"holding"}),
            reply_notifies=True,
        )
    return networks
