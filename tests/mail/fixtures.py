"""Pytest fixtures for tests that need real mail servers; import them into a conftest.

- ``dovecot`` (session): one Dovecot for the whole run; it *fails* (never skips) when Dovecot is
  not installed, saying how to install it;
- ``mailbox``: a fresh researcher account on it for each test;
- ``smtp``: an SMTP receiver delivering into that mailbox and playing the brands;
- ``endpoint``: the email channel's endpoint for both servers.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime

import pytest

from tests.mail.servers import Dovecot, Mailbox, SmtpReceiver

_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    try:
        server = Dovecot()
    except FileNotFoundError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        server.start()
    except RuntimeError as exc:
        server.stop()
        pytest.fail(f"Dovecot would not start on loopback: {exc}", pytrace=False)
    yield server
    server.stop()


@pytest.fixture
def mailbox(dovecot: Dovecot) -> Mailbox:
    address, password = dovecot.take_user()
    return Mailbox(dovecot, address, password)


@pytest.fixture
def smtp(mailbox: Mailbox) -> Iterator[SmtpReceiver]:
    receiver = SmtpReceiver(mailbox)
    receiver.start()
    yield receiver
    receiver.stop()
    if receiver.errors:
        raise receiver.errors[0]


@pytest.fixture
def endpoint(dovecot: Dovecot, smtp: SmtpReceiver) -> str:
    return (f"imap://127.0.0.1:{dovecot.imap_port}/INBOX,Junk"
            f"?smtp=smtp://127.0.0.1:{smtp.port}&sent=Sent")


def brand_reply(
    probe: EmailMessage,
    *,
    sender: str,
    body: str,
    date: datetime,
    threaded: bool = True,
    to_reply_address: bool = True,
    subject: str | None = None,
    headers: dict[str, str] | None = None,
    message_id: str | None = None,
) -> bytes:
    """A brand's answer to ``probe`` as its mail software would write it."""
    reply = EmailMessage()
    reply["From"] = sender
    reply["To"] = str(probe["Reply-To"] if to_reply_address else probe["From"])
    reply["Subject"] = subject if subject is not None else f"Re: {probe['Subject']}"
    reply["Date"] = format_datetime(date)
    reply["Message-ID"] = message_id or f"<r{next(_numbers)}.{sender.split('@')[0]}@brand.test>"
    if threaded:
        reply["In-Reply-To"] = str(probe["Message-ID"])
        reply["References"] = str(probe["Message-ID"])
    for name, value in (headers or {}).items():
        reply[name] = value
    reply.set_content(f"{body}\n\nOn Monday, you wrote:\n> {probe.get_content().strip()}\n")
    return reply.as_bytes()
