"""The ``email`` channel: send probes over SMTP, read replies over IMAP, time both by the server.

Sending (research/platforms.md §5.1–5.2). Each probe gets a *token*, ten base32 characters
derived from the study and the probe id, and carries it three ways so a reply can be matched
however the brand's software treats it (:mod:`mystery.channels.mailparse`):

- ``Message-ID: <token@our-domain>`` (a pure function of the token, so a token found anywhere
  names the probe's id without a lookup),
- ``Reply-To: researcher+token@our-domain`` (RFC 5233 plus-address),
- ``Subject: … [ref TOKEN]``.

The probe's time. An email has no platform id that carries a time, and our own clock is not a
platform's. So the sent time is the ``INTERNALDATE`` our IMAP server gives the copy filed in
the Sent folder right after the SMTP server accepted the message: the copy the provider filed
itself if it is there already (Gmail does), else one we ``APPEND`` *without* a date-time, which
the server stamps with its own clock (RFC 3501 §6.3.11). Replies are timed by their
``INTERNALDATE`` too, the time our server delivered them, so a response time is the difference
of two readings of one server clock, free of our clock's and the brand's skew. Both are whole
seconds (the resolution of ``INTERNALDATE``). A brand's ``Date`` header is only its claim: it is
kept (``Message.claimed_at``) and a skew over 15 minutes is reported as a warning.

Never send twice (rule 3). The message is also sent to the researcher's own address (an
envelope recipient only, like a Bcc): if the SMTP connection drops while the data is on its
way, the copy the provider delivers to us, or the Sent copy, is how :meth:`find_sent` learns
that it did go out; until one shows up (``reconcile_grace``) the send stays uncertain rather
than being retried.

Reading (§5.3): each configured folder is examined read-only and read by UID from the last one
seen; the cursor is ``{folder: [UIDVALIDITY, last UID]}`` as JSON, and a folder whose
UIDVALIDITY changed is read again from the start (recording is idempotent on ``Message-ID``).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import smtplib
import textwrap
import time
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from functools import partial

from mystery import credentials
from mystery.channels.base import Message, Outgoing, Poll, Sent
from mystery.channels.imap import Fetched, Imap, ImapSession
from mystery.channels.mailparse import (
    TOKEN_LENGTH,
    Headers,
    Identity,
    body_text,
    parse_headers,
    probe_id_for,
)
from mystery.channels.mailserver import parse_endpoint, smtp_session, submit
from mystery.errors import AuthError, ChannelError, Rejected, TransientError

SKEW_WARNING = timedelta(minutes=15)
_HEADER_ITEMS = "(UID INTERNALDATE BODY.PEEK[HEADER])"
_BODY_ITEMS = "(UID BODY.PEEK[TEXT]<0.262144>)"


def subject_line(text: str) -> str:
    """The question as a subject line: whole words, at most 70 characters."""
    return textwrap.shorten(text, 70, placeholder="…")


class EmailChannel:
    """The ``email`` channel. ``account`` is the researcher's address (``Name <a@b>`` is fine)."""

    name = "email"

    def __init__(self, account: str, endpoint: str, *, token_salt: str,
                 password: str | None = None,
                 visibility_lag: timedelta = timedelta(minutes=2),
                 reconcile_grace: timedelta = timedelta(minutes=10),
                 timeout: float = 30.0) -> None:
        try:
            self.me = Identity.of(account)
        except ValueError:
            raise ChannelError(
                f"channels.email.account {account!r} is not an email address; write the "
                "researcher's address, e.g. account = \"jane@example.org\""
            ) from None
        self.account = account  # as the study names it: whose keys (mystery.credentials)
        self.sender = account if parseaddr(account)[1] else self.me.address
        self.endpoint = parse_endpoint(endpoint)
        self.token_salt = token_salt
        self.visibility_lag = visibility_lag
        self.reconcile_grace = reconcile_grace
        self._password = password
        self.timeout = timeout
        self._imap: Imap | None = None
        self._smtp_sessions = 0
        self._pending: dict[str, bytes] = {}  # accepted by SMTP, not yet filed in Sent
        self._uncertain: dict[str, float] = {}  # message id → monotonic time of the attempt
        # Never more than 0: a message without a usable INTERNALDATE stops the poll instead,
        # since the cursor would otherwise move past it.
        self.skipped = 0

    # -- plumbing --------------------------------------------------------------------------

    @property
    def requests(self) -> int:
        return self._smtp_sessions + (self._imap.commands if self._imap else 0)

    @property
    def imap(self) -> Imap:
        if self._imap is None:
            raise ChannelError("the email channel is not open")
        return self._imap

    def _login(self) -> str:
        return self.endpoint.login or self.me.address

    def _secret(self) -> str:
        if self._password is None:
            self._password = credentials.get_secret("EMAIL_PASSWORD", account=self.account)
        if not self._password:
            raise AuthError(f"no email password: {credentials.missing_help('email')}")
        return self._password

    def token(self, probe_id: str) -> str:
        digest = hashlib.sha256(f"{self.token_salt}\0{probe_id}".encode()).digest()
        return base64.b32encode(digest).decode("ascii")[:TOKEN_LENGTH].lower()

    def message_id(self, probe_id: str) -> str:
        return self.me.message_id(self.token(probe_id))

    def compose(self, outgoing: Outgoing) -> EmailMessage:
        """The probe as an email. ``Date`` is our clock's claim, as any mail client's is; it
        is never used for timing."""
        token = self.token(outgoing.probe_id)
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = outgoing.handle
        message["Reply-To"] = self.me.reply_to(token)
        message["Subject"] = f"{subject_line(outgoing.text)} [ref {token.upper()}]"
        message["Date"] = format_datetime(datetime.now(UTC))
        message["Message-ID"] = self.me.message_id(token)
        message.set_content(outgoing.text)
        return message

    # -- contract --------------------------------------------------------------------------

    def open(self) -> None:
        """Log in to both servers and check every folder, so a mistake shows before any send."""
        self._imap = Imap(self.endpoint.imap, self._login(), self._secret(), self.timeout)
        try:
            for folder in (*self.endpoint.folders, self.endpoint.sent_folder):
                self.imap.run(f"EXAMINE {folder}", partial(ImapSession.examine, folder=folder))
            server = smtp_session(self.endpoint.smtp, self._login(), self._secret(),
                                  self.timeout)
        except BaseException:
            self.close()
            raise
        self._smtp_sessions += 1
        _quit(server)

    def close(self) -> None:
        if self._imap is not None:
            self._imap.close()

    def brand_authors(self, handles: list[str]) -> None:
        """Nothing to resolve: a reply's author is its ``From`` address."""

    def send(self, outgoing: Outgoing) -> Sent:
        if "@" not in outgoing.handle:
            raise Rejected(f"{outgoing.handle!r} is not an email address; fix the brand's "
                           "email handle in the study")
        message = self.compose(outgoing)
        mid = str(message["Message-ID"])
        server = smtp_session(self.endpoint.smtp, self._login(), self._secret(),
                              self.timeout)
        self._smtp_sessions += 1
        try:
            submit(server, message, self.me.address, [outgoing.handle, self.me.address],
                   outgoing.handle)
        except TransientError:
            self._uncertain[mid] = time.monotonic()
            raise
        finally:
            _quit(server)
        self._pending[mid] = message.as_bytes(policy=policy.SMTP)  # CRLF, as IMAP wants
        sent_at = self._file_sent(mid)
        return Sent(mid, sent_at, outgoing.text)

    def find_sent(self, outgoing: Outgoing, since: datetime) -> Sent | None:
        """Look for the probe's ``Message-ID`` in the Sent folder, then among the copies the
        provider delivered to us (the reply folders)."""
        mid = self.message_id(outgoing.probe_id)
        if mid in self._pending:
            return Sent(mid, self._file_sent(mid), outgoing.text)
        for folder in (self.endpoint.sent_folder, *self.endpoint.folders):
            found = self.imap.run(f"search {folder}",
                                  partial(ImapSession.find, folder=folder, message_id=mid))
            if found is not None and found.internaldate is not None:
                self._uncertain.pop(mid, None)
                return Sent(mid, found.internaldate, outgoing.text)
        started = self._uncertain.get(mid)
        grace = self.reconcile_grace.total_seconds()
        if started is not None and time.monotonic() - started < grace:
            raise TransientError(
                f"no copy of {mid} has reached our mailbox yet; it may still be on its way, so "
                "it is not sent again until it shows up or "
                f"{grace / 60:.0f} minutes have passed"
            )
        return None

    def poll(self, cursor: str | None, now: datetime) -> Poll:
        before = self.requests
        state = _read_cursor(cursor)
        messages: list[Message] = []
        warnings: list[str] = []
        for folder in self.endpoint.folders:
            found, state[folder], notes = self.imap.run(
                f"reading {folder}",
                partial(self._read_folder, folder=folder, seen=state.get(folder)))
            messages.extend(found)
            warnings.extend(notes)
        return Poll(
            messages=messages,
            cursor=json.dumps(state, sort_keys=True, separators=(",", ":")),
            complete_through=now - self.visibility_lag,
            requests=self.requests - before,
            warnings=warnings,
        )

    # -- helpers ---------------------------------------------------------------------------

    def _file_sent(self, mid: str) -> datetime:
        """The server's time for a message the SMTP server accepted: the INTERNALDATE of its
        copy in the Sent folder, filed now by ``APPEND`` if the provider did not file one."""
        raw = self._pending[mid]
        folder = self.endpoint.sent_folder

        def file(session: ImapSession) -> Fetched | None:
            found = session.find(folder, mid)
            if found is None:
                session.append(folder, raw)
                found = session.find(folder, mid)
            return found

        try:
            found = self.imap.run(f"filing the Sent copy of {mid}", file, retry=False)
        except ChannelError as exc:
            raise TransientError(f"sent {mid}, but cannot file its Sent copy to read the "
                                 f"server's time yet ({exc})") from None
        if found is None or found.internaldate is None:
            raise TransientError(f"sent {mid}, but its Sent copy does not show up in {folder!r}")
        del self._pending[mid]
        self._uncertain.pop(mid, None)
        return found.internaldate

    def _read_folder(self, session: ImapSession, folder: str, seen: list[int] | None
                     ) -> tuple[list[Message], list[int], list[str]]:
        validity = session.examine(folder)
        notes: list[str] = []
        last = 0
        if seen is not None and seen[0] == validity:
            last = seen[1]
        elif seen is not None:
            notes.append(f"mail folder {folder!r} was renumbered by the server (UIDVALIDITY "
                         f"{seen[0]} → {validity}); reading it again from the start")
        uids = session.uids_after(last)
        if not uids:
            return [], [validity, last], notes
        candidates: list[tuple[Fetched, Headers, str | None]] = []
        for item in session.fetch(uids, _HEADER_ITEMS):
            if item.internaldate is None:  # never skipped: the cursor would move past it
                raise ChannelError(f"the IMAP server sent no INTERNALDATE for UID {item.uid} "
                                   f"in {folder!r}")
            try:
                headers = parse_headers(item.section("BODY[HEADER]"))
            except Exception as exc:  # the email package can fail on pathological headers
                notes.append(f"cannot read the headers of message UID {item.uid} in {folder!r} "
                             f"({type(exc).__name__}); check it in a mail client")
                continue
            if self._is_ours(headers):
                continue
            probe_mid, _ = probe_id_for(headers, self.me)
            if probe_mid is not None or headers.threaded:
                candidates.append((item, headers, probe_mid))
        wanted = [item.uid for item, _, _ in candidates]
        bodies = {f.uid: f.section("BODY[TEXT]")
                  for f in (session.fetch(wanted, _BODY_ITEMS) if wanted else [])}
        messages = []
        for item, headers, probe_mid in candidates:
            assert item.internaldate is not None
            mid = headers.message_id or _stand_in_id(item.section("BODY[HEADER]"))
            notes.extend(_skew_notes(mid, headers, item.internaldate))
            messages.append(Message(
                message_id=mid,
                author=headers.author,
                text=body_text(item.section("BODY[HEADER]"), bodies.get(item.uid, b"")),
                created_at=item.internaldate,
                in_reply_to=headers.in_reply_to,
                conversation_id=probe_mid,
                automatic=headers.automatic,
                claimed_at=headers.claimed_at,
            ))
        return messages, [validity, max(uids)], notes

    def _is_ours(self, headers: Headers) -> bool:
        """Our own copies (the Bcc to ourselves, a Sent folder polled by mistake)."""
        own_id = headers.message_id is not None and self.me.token_of_id(headers.message_id)
        return bool(own_id) or headers.author == self.me.address.lower()


def _quit(server: smtplib.SMTP) -> None:
    """Say goodbye; the message is already accepted or refused, so a failed QUIT changes
    nothing."""
    with contextlib.suppress(OSError, smtplib.SMTPException):
        server.quit()
    server.close()


def _read_cursor(cursor: str | None) -> dict[str, list[int]]:
    if not cursor:
        return {}
    try:
        data = json.loads(cursor)
        return {str(k): [int(v[0]), int(v[1])] for k, v in data.items()}
    except (ValueError, TypeError, KeyError, IndexError, AttributeError):
        raise ChannelError(f"the stored email cursor {cursor!r} is not one this version "
                           "wrote; was the store used with another channel?") from None


def _stand_in_id(header: bytes) -> str:
    """A stable id for a message without ``Message-ID``: the same after any re-read."""
    return f"<{hashlib.sha256(header).hexdigest()[:32]}@no-message-id.invalid>"


def _skew_notes(mid: str, headers: Headers, arrived: datetime) -> list[str]:
    notes = []
    if headers.claimed_at is not None and abs(headers.claimed_at - arrived) > SKEW_WARNING:
        notes.append(
            f"reply {mid} from {headers.author}: its Date header says "
            f"{headers.claimed_at:%Y-%m-%d %H:%M:%S} UTC but our server received it at "
            f"{arrived:%Y-%m-%d %H:%M:%S} UTC; it is timed by our server"
        )
    if headers.received_at is not None and abs(headers.received_at - arrived) > SKEW_WARNING:
        notes.append(
            f"reply {mid}: the IMAP arrival time {arrived:%Y-%m-%d %H:%M:%S} UTC differs from "
            f"our server's Received header ({headers.received_at:%Y-%m-%d %H:%M:%S} UTC): was "
            "the mailbox migrated or imported? Check this reply's time"
        )
    return notes

