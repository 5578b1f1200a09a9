"""A thin, typed layer over :mod:`imaplib` for reading the researcher's mailbox.

Why not imaplib directly in the channel: imaplib answers in loosely shaped lists of bytes and
tuples, signals failures with three unrelated exception families (``IMAP4.error`` for a ``NO`` or
``BAD``, ``IMAP4.abort`` and ``OSError`` for a dropped connection), and its
``Internaldate2tuple`` returns *local* time. This module turns all of that into plain values and
the channel contract's errors, in one place:

- every mailbox is opened with ``EXAMINE`` (``select(readonly=True)``) and read with
  ``BODY.PEEK``: polling never marks a brand's mail as read in the researcher's client;
- messages are addressed by UID, never by sequence number, and a UID is only meaningful with
  the mailbox's ``UIDVALIDITY`` (RFC 3501 §2.3.1.1), which :meth:`Imap.examine` returns;
- ``INTERNALDATE`` is parsed to an aware UTC datetime by :func:`parse_internaldate`.
"""

from __future__ import annotations

import contextlib
import imaplib
import re
import ssl
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

from mystery.errors import AuthError, ChannelError, TransientError

T = TypeVar("T")

_MONTHS = {m: i for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)}
_INTERNALDATE = re.compile(rb'INTERNALDATE "([^"]+)"')
_UID = re.compile(rb"\bUID (\d+)")
_SECTION = re.compile(rb"(BODY\[[^\]]*\](?:<\d+>)?) \{\d+\}$")


def parse_internaldate(text: str) -> datetime:
    """``" 2-Mar-2026 09:14:05 +0100"`` → ``2026-03-02 08:14:05 UTC``.

    ``strptime`` with ``%d-%m-%Y %H:%M:%S %z`` after mapping the English month name to its
    number: ``%b`` would follow the process locale, and ``imaplib.Internaldate2tuple`` returns
    local time as a ``struct_time`` (research/platforms.md §5.4). A day may be space-padded.
    """
    day, month, rest = text.strip().strip('"').strip().split("-", 2)
    number = _MONTHS.get(month.lower())
    if number is None:
        raise ValueError(f"not an IMAP INTERNALDATE: {text!r}")
    parsed = datetime.strptime(f"{int(day):02d}-{number:02d}-{rest}", "%d-%m-%Y %H:%M:%S %z")
    return parsed.astimezone(UTC)


def format_internaldate(when: datetime) -> str:
    """An aware datetime as an IMAP ``date-time`` (quoted), for ``APPEND`` with a set date."""
    months = list(_MONTHS)
    t = when.astimezone(UTC)
    return f'"{t.day:02d}-{months[t.month - 1].title()}-{t.year} {t:%H:%M:%S} +0000"'


@dataclass
class Fetched:
    """One message as ``UID FETCH`` returned it: UID, INTERNALDATE and the sections asked for."""

    uid: int
    internaldate: datetime | None = None
    sections: dict[str, bytes] = field(default_factory=dict)

    def section(self, prefix: str) -> bytes:
        """The literal of the first section whose name starts with ``prefix`` (``BODY[HEADER]``)."""
        return next((v for k, v in self.sections.items() if k.startswith(prefix)), b"")


def parse_fetch(data: Iterable[object]) -> list[Fetched]:
    """imaplib's FETCH answer → one :class:`Fetched` per message.

    imaplib returns ``(b'1 (UID 5 INTERNALDATE "…" BODY[HEADER] {312}', literal)`` tuples, with
    whatever the server put after the last literal as a separate ``bytes`` item (``b')'`` or
    ``b' UID 5)'``): the server chooses the order of the items, so UID and INTERNALDATE are
    looked for in both places.
    """
    out: list[Fetched] = []
    current: Fetched | None = None
    for item in data:
        if isinstance(item, tuple) and len(item) == 2:
            meta, literal = bytes(item[0]), bytes(item[1])
            if re.match(rb"^\d+ \(", meta) or current is None:
                current = Fetched(uid=0)
                out.append(current)
            _read_atoms(current, meta)
            section = _SECTION.search(meta)
            if section:
                current.sections[section.group(1).decode("ascii", "replace")] = literal
        elif isinstance(item, bytes):
            if re.match(rb"^\d+ \(", item):  # a message with no literal: all on one line
                current = Fetched(uid=0)
                out.append(current)
            if current is not None:
                _read_atoms(current, item)
    return [f for f in out if f.uid]


def _read_atoms(fetched: Fetched, text: bytes) -> None:
    if uid := _UID.search(text):
        fetched.uid = int(uid.group(1))
    if date := _INTERNALDATE.search(text):
        raw = date.group(1).decode("ascii", "replace")
        try:
            fetched.internaldate = parse_internaldate(raw)
        except ValueError:
            # Never skip a message for it: the cursor would move past a reply, lost for good.
            raise ChannelError(f"the IMAP server sent an unreadable INTERNALDATE {raw!r} for "
                               f"UID {fetched.uid or '?'}") from None


def _ok(typ: str, data: Sequence[object], what: str) -> Sequence[object]:
    if typ != "OK":
        detail = b" ".join(d for d in data if isinstance(d, bytes)).decode("utf-8", "replace")
        raise ChannelError(f"the IMAP server refused {what}: {detail or typ}")
    return data


@dataclass(frozen=True)
class ImapAddress:
    host: str
    port: int
    security: str  # "tls" (implicit, imaps://), "starttls", or "none" (loopback only)


class ImapSession:
    """The commands the channel uses, on one logged-in connection."""

    def __init__(self, conn: imaplib.IMAP4, owner: Imap) -> None:
        self.conn = conn
        self._owner = owner

    def _count(self) -> None:
        self._owner.commands += 1

    def examine(self, folder: str) -> int:
        """Open ``folder`` read-only; its UIDVALIDITY."""
        self._count()
        typ, data = self.conn.select(_quote(folder), readonly=True)
        if typ != "OK":
            detail = b" ".join(d for d in data if isinstance(d, bytes)).decode("utf-8", "replace")
            raise ChannelError(
                f"cannot open mail folder {folder!r} ({detail}); fix the folder names in "
                "channels.email.endpoint (e.g. '/INBOX,Junk' and '?sent=Sent')"
            )
        _, values = self.conn.response("UIDVALIDITY")
        raw = values[0] if values else None
        if not isinstance(raw, bytes):
            raise ChannelError(f"the IMAP server sent no UIDVALIDITY for {folder!r}")
        return int(raw)

    def uids_after(self, last_uid: int) -> list[int]:
        """UIDs greater than ``last_uid`` in the open folder, ascending.

        ``UID SEARCH UID n:*`` always includes the highest UID even when it is below ``n``
        (``*`` is the largest UID in use), so the answer is filtered."""
        self._count()
        typ, data = self.conn.uid("SEARCH", "UID", f"{last_uid + 1}:*")
        found = _ok(typ, data, "UID SEARCH")
        raw = found[0] if found and isinstance(found[0], bytes) else b""
        return sorted(u for u in (int(x) for x in raw.split()) if u > last_uid)

    def fetch(self, uids: list[int], items: str) -> list[Fetched]:
        out: list[Fetched] = []
        for start in range(0, len(uids), 200):
            chunk = ",".join(str(u) for u in uids[start:start + 200])
            self._count()
            typ, data = self.conn.uid("FETCH", chunk, items)
            out.extend(parse_fetch(_ok(typ, data, "UID FETCH")))
        return out

    def find(self, folder: str, message_id: str) -> Fetched | None:
        """The copy of ``message_id`` in ``folder`` (UID and INTERNALDATE), if there is one."""
        self.examine(folder)
        self._count()
        typ, data = self.conn.uid("SEARCH", "HEADER", "Message-ID", _quote(message_id))
        found = _ok(typ, data, "UID SEARCH HEADER Message-ID")
        raw = found[0] if found and isinstance(found[0], bytes) else b""
        uids = [int(x) for x in raw.split()]
        if not uids:
            return None
        fetched = self.fetch(uids[:1], "(UID INTERNALDATE)")
        return fetched[0] if fetched and fetched[0].internaldate else None

    def append(self, folder: str, raw: bytes) -> None:
        """File ``raw`` in ``folder`` *without* a date-time, so the server stamps INTERNALDATE
        with its own clock (RFC 3501 §6.3.11)."""
        self._count()
        typ, data = self.conn.append(_quote(folder), r"(\Seen)", None, raw)
        _ok(typ, data, f"APPEND to {folder!r}")


class Imap:
    """One logged-in IMAP connection, reconnected on demand after a dropped connection."""

    def __init__(self, address: ImapAddress, login: str, password: str,
                 timeout: float = 30.0) -> None:
        self.address = address
        self.login = login
        self._password = password
        self.timeout = timeout
        self.commands = 0
        self._conn: imaplib.IMAP4 | None = None

    # -- connection ------------------------------------------------------------------------

    def _connect(self) -> imaplib.IMAP4:
        a = self.address
        context = ssl.create_default_context()
        try:
            if a.security == "tls":
                conn: imaplib.IMAP4 = imaplib.IMAP4_SSL(a.host, a.port, ssl_context=context,
                                                        timeout=self.timeout)
            else:
                conn = imaplib.IMAP4(a.host, a.port, timeout=self.timeout)
                if a.security == "starttls":
                    if "STARTTLS" not in conn.capabilities:
                        conn.shutdown()
                        raise AuthError(
                            f"the IMAP server {a.host}:{a.port} offers no STARTTLS, so the "
                            "password would travel in clear; use imaps:// in "
                            "channels.email.endpoint"
                        )
                    conn.starttls(context)
        except (OSError, imaplib.IMAP4.abort) as exc:
            raise TransientError(
                f"cannot reach the IMAP server {a.host}:{a.port}: {exc}") from None
        except imaplib.IMAP4.error as exc:
            raise ChannelError(f"the IMAP server {a.host}:{a.port} failed: {exc}") from None
        self.commands += 1
        try:
            conn.login(self.login, self._password)
        except imaplib.IMAP4.error:
            conn.shutdown()
            raise AuthError(
                f"the IMAP server {a.host} refused the login {self.login!r}; check "
                "EMAIL_PASSWORD (an app password for providers with two-factor sign-in) and "
                "channels.email.account (or login= in the endpoint)"
            ) from None
        except (OSError, imaplib.IMAP4.abort) as exc:
            raise TransientError(f"the IMAP server {a.host} dropped the login: {exc}") from None
        return conn

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(OSError, imaplib.IMAP4.error):
                self._conn.logout()
            self._conn = None

    def run(self, what: str, fn: Callable[[ImapSession], T], *, retry: bool = True) -> T:
        """Run ``fn`` on the connection; on a dropped connection reconnect and, for reads
        (``retry``), try once more: servers drop idle connections between polls."""
        for attempt in (1, 2):
            if self._conn is None:
                self._conn = self._connect()
            try:
                return fn(ImapSession(self._conn, self))
            except (OSError, imaplib.IMAP4.abort) as exc:
                self._conn = None
                if attempt == 2 or not retry:
                    raise TransientError(f"IMAP connection lost during {what}: {exc}") from None
            except imaplib.IMAP4.error as exc:
                raise ChannelError(f"the IMAP server refused {what}: {exc}") from None
        raise AssertionError("unreachable")  # pragma: no cover


def _quote(text: str) -> str:
    """An IMAP quoted string: folder names and message ids may hold spaces or specials."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
