"""The email channel against a real IMAP server (Dovecot) and a real SMTP receiver, on loopback.

Brands answer by appending replies with an explicit INTERNALDATE, so every time the channel
reports can be compared with the server's ground truth exactly.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest

from mystery.channels.base import Outgoing
from mystery.channels.email import EmailChannel
from mystery.channels.imap import ImapAddress, format_internaldate, parse_fetch, parse_internaldate
from mystery.channels.mailparse import body_text
from mystery.channels.mailserver import parse_endpoint
from mystery.clock import VirtualClock
from mystery.collect.connect import _make_channel
from mystery.collect.runner import Runner
from mystery.errors import (
    AuthError,
    ChannelError,
    MysteryError,
    RateLimited,
    Rejected,
    TransientError,
)
from mystery.store.store import Store
from mystery.study.model import Study
from mystery.study.plan import make_plan
from tests.mail.fixtures import brand_reply
from tests.mail.servers import Mailbox, SmtpReceiver

BRAND = "help@acme.test"
AGENT = "jo@acme.test"


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _open(mailbox: Mailbox, endpoint: str, **kwargs: object) -> EmailChannel:
    channel = EmailChannel(mailbox.address, endpoint, token_salt="t", password=mailbox.password,
                           visibility_lag=timedelta(0), **kwargs)  # type: ignore[arg-type]
    channel.open()
    return channel


@pytest.fixture
def channel(mailbox: Mailbox, endpoint: str) -> Iterator[EmailChannel]:
    channel = _open(mailbox, endpoint)
    yield channel
    channel.close()


def probe(probe_id: str = "p0001", text: str = "Hi Acme, do you deliver on Sundays?") -> Outgoing:
    return Outgoing(probe_id, BRAND, text)


# -- sending -----------------------------------------------------------------------------------


def test_a_probe_carries_its_id_reply_address_and_subject_token(
    channel: EmailChannel, smtp: SmtpReceiver, mailbox: Mailbox
) -> None:
    sent = channel.send(probe())
    sender, recipients, message = smtp.received[-1]
    token = channel.token("p0001")
    local = mailbox.address.split("@")[0]
    assert message["Message-ID"] == sent.message_id == f"<{token}@example.org>"
    assert message["Reply-To"] == f"{local}+{token}@example.org"
    assert message["Subject"] == f"Hi Acme, do you deliver on Sundays? [ref {token.upper()}]"
    assert message["To"] == BRAND and message["From"] == mailbox.address
    # A copy goes to ourselves as an envelope recipient only: the brand never sees it.
    assert sender == mailbox.address and recipients == [BRAND, mailbox.address]
    assert "Bcc" not in message
    assert message.get_content().strip() == sent.text == "Hi Acme, do you deliver on Sundays?"


def test_the_sent_time_is_the_servers_internaldate_of_the_sent_copy(
    channel: EmailChannel, mailbox: Mailbox
) -> None:
    before = _now()
    sent = channel.send(probe())
    after = datetime.now(UTC)
    truth = mailbox.server.internaldates(mailbox.address, "Sent")
    assert list(truth) == [sent.message_id]  # filed once
    assert sent.sent_at == truth[sent.message_id]
    assert before <= sent.sent_at <= after


def test_a_sent_copy_the_provider_filed_itself_is_used_not_duplicated(
    channel: EmailChannel, smtp: SmtpReceiver, mailbox: Mailbox
) -> None:
    filed_at = _now() - timedelta(seconds=3)

    def provider_files_it(message: EmailMessage) -> None:  # as Gmail does on submission
        mailbox.append("Sent", message.as_bytes(), filed_at)

    smtp.brands[BRAND] = provider_files_it
    sent = channel.send(probe())
    assert sent.sent_at == filed_at
    assert list(mailbox.server.internaldates(mailbox.address, "Sent")) == [sent.message_id]


# -- replies -----------------------------------------------------------------------------------


def test_replies_are_timed_by_internaldate_and_machine_replies_are_flagged(
    channel: EmailChannel, smtp: SmtpReceiver, mailbox: Mailbox
) -> None:
    base = _now()
    ack_at, human_at = base + timedelta(minutes=1), base + timedelta(minutes=42)
    claimed = human_at - timedelta(hours=3)  # the agent's clock is three hours wrong

    def answer(message: EmailMessage) -> None:
        mailbox.append("INBOX", brand_reply(
            message, sender=BRAND, date=ack_at, headers={"Auto-Submitted": "auto-replied"},
            body="Thank you for contacting Acme. Your request 4411 has been received.",
        ), ack_at)
        mailbox.append("INBOX", brand_reply(
            message, sender=AGENT, date=claimed, body="Yes, we deliver on Sundays until 6pm.",
        ), human_at)

    smtp.brands[BRAND] = answer
    sent = channel.send(probe())
    poll = channel.poll(None, base + timedelta(hours=1))

    assert [m.created_at for m in poll.messages] == [ack_at, human_at]
    auto, human = poll.messages
    assert (auto.automatic, human.automatic) == (True, False)
    assert {auto.conversation_id, human.conversation_id, human.in_reply_to} == {sent.message_id}
    assert (auto.author, human.author) == (BRAND, AGENT)
    assert human.claimed_at == claimed and auto.claimed_at == ack_at
    assert human.text == "Yes, we deliver on Sundays until 6pm."  # our quoted question is cut
    assert poll.complete_through == base + timedelta(hours=1)
    # The skewed Date is reported, and the reply is still timed by our server.
    assert any("Date header" in w and human.message_id in w for w in poll.warnings)
    # Our own copy (the envelope copy to ourselves) is not a reply.
    assert sent.message_id not in {m.message_id for m in poll.messages}


@pytest.mark.parametrize("header", [
    {"Auto-Submitted": "auto-generated"},
    {"X-Autoreply": "yes"},
    {"X-Autorespond": "Thank you"},
    {"Precedence": "auto_reply"},
])
def test_other_marks_of_an_automatic_reply(
    channel: EmailChannel, smtp: SmtpReceiver, mailbox: Mailbox, header: dict[str, str]
) -> None:
    at = _now()
    smtp.brands[BRAND] = lambda m: mailbox.append(
        "INBOX", brand_reply(m, sender=BRAND, date=at, body="Received.", headers=header), at)
    channel.send(probe())
    assert [m.automatic for m in channel.poll(None, at).messages] == [True]


def test_replies_without_in_reply_to_are_matched_by_plus_address_then_subject_token(
    channel: EmailChannel, smtp: SmtpReceiver, mailbox: Mailbox
) -> None:
    at = _now()
    seen: list[EmailMessage] = []
    smtp.brands[BRAND] = seen.append
    sent = channel.send(probe())
    message = seen[0]
    token = channel.token("p0001").upper()
    # A helpdesk that drops In-Reply-To but writes to our Reply-To address.
    mailbox.append("INBOX", brand_reply(message, sender=BRAND, date=at, threaded=False,
                                        body="Yes we do.", subject="Your request"), at)
    # One that writes from no-reply to our plain address, keeping only the subject token.
    mailbox.append("INBOX", brand_reply(
        message, sender="no-reply@desk.test", date=at, threaded=False, to_reply_address=False,
        subject=f"[Acme #123] Re: [ref {token}]", body="Ticket updated."), at)
    # A newsletter: no thread, no token. Not a reply to anything of ours.
    newsletter = EmailMessage()
    newsletter["From"], newsletter["To"] = "news@shop.test", mailbox.address
    newsletter["Subject"], newsletter["Message-ID"] = "Deals", "<n1@shop.test>"
    newsletter.set_content("Deals!")
    mailbox.append("INBOX", newsletter.as_bytes(), at)

    messages = channel.poll(None, at).messages
    assert [(m.author, m.conversation_id) for m in messages] == [
        (BRAND, sent.message_id), ("no-reply@desk.test", sent.message_id)]


def test_a_reply_to_the_brands_own_message_keeps_its_parent_for_the_runner(
    channel: EmailChannel, smtp: SmtpReceiver, mailbox: Mailbox
) -> None:
    at = _now()
    seen: list[EmailMessage] = []
    smtp.brands[BRAND] = seen.append
    channel.send(probe())
    follow_up = EmailMessage()
    follow_up["From"], follow_up["To"] = BRAND, mailbox.address
    follow_up["Subject"], follow_up["Message-ID"] = "Update", "<f1@acme.test>"
    follow_up["In-Reply-To"] = "<ticket-4411@acme.test>"
    follow_up.set_content("Following up on your ticket.")
    mailbox.append("INBOX", follow_up.as_bytes(), at)
    (message,) = channel.poll(None, at).messages
    assert message.conversation_id is None and message.in_reply_to == "<ticket-4411@acme.test>"


def test_the_cursor_reads_each_folder_from_the_last_uid_and_rescans_a_renumbered_one(
    mailbox: Mailbox, smtp: SmtpReceiver, endpoint: str
) -> None:
    channel = _open(mailbox, endpoint)
    seen: list[EmailMessage] = []
    smtp.brands[BRAND] = seen.append
    channel.send(probe())
    at = _now()
    mailbox.append("Junk", brand_reply(seen[0], sender=BRAND, date=at, body="Yes."), at)
    first = channel.poll(None, at)
    assert [m.created_at for m in first.messages] == [at]
    again = channel.poll(first.cursor, at)
    assert again.messages == [] and again.cursor == first.cursor

    later = at + timedelta(minutes=5)
    mailbox.append("INBOX", brand_reply(seen[0], sender=BRAND, date=later, body="And more."),
                   later)
    # A restarted runner (a new channel) resumes from the stored cursor.
    channel.close()
    channel = _open(mailbox, endpoint)
    third = channel.poll(again.cursor, later)
    assert [m.created_at for m in third.messages] == [later]

    with mailbox.server.imap(mailbox.address) as conn:  # the server renumbers Junk
        assert conn.delete("Junk")[0] == "OK" and conn.create("Junk")[0] == "OK"
    mailbox.append("Junk", brand_reply(seen[0], sender=BRAND, date=at, body="Yes.",
                                       message_id=first.messages[0].message_id), at)
    fourth = channel.poll(third.cursor, later)
    assert [m.message_id for m in fourth.messages] == [first.messages[0].message_id]
    assert any("renumbered" in w for w in fourth.warnings)
    channel.close()


# -- failures ----------------------------------------------------------------------------------


def test_a_deferred_message_is_a_wait_and_a_refused_address_is_rejected(
    channel: EmailChannel, smtp: SmtpReceiver, mailbox: Mailbox
) -> None:
    smtp.fault = "defer"
    with pytest.raises(RateLimited):
        channel.send(probe())
    smtp.fault = "refuse"
    with pytest.raises(Rejected, match=r"help@acme\.test"):
        channel.send(probe())
    assert mailbox.server.internaldates(mailbox.address, "Sent") == {}


def test_a_send_cut_off_after_delivery_is_found_and_never_resent(
    channel: EmailChannel, smtp: SmtpReceiver, mailbox: Mailbox
) -> None:
    smtp.fault = "drop-after"
    with pytest.raises(TransientError):
        channel.send(probe())
    found = channel.find_sent(probe(), _now() - timedelta(minutes=1))
    assert found is not None and found.message_id == channel.message_id("p0001")
    # Timed by our server: the arrival of the copy the provider delivered to us.
    assert found.sent_at == mailbox.server.internaldates(mailbox.address, "INBOX")[
        found.message_id]
    assert len(smtp.received) == 1


def test_a_send_cut_off_before_delivery_stays_uncertain_until_the_grace_ends(
    mailbox: Mailbox, smtp: SmtpReceiver, endpoint: str
) -> None:
    channel = _open(mailbox, endpoint)
    smtp.fault = "drop-before"
    with pytest.raises(TransientError):
        channel.send(probe())
    with pytest.raises(TransientError, match="not sent again until"):
        channel.find_sent(probe(), _now())
    channel.reconcile_grace = timedelta(0)
    assert channel.find_sent(probe(), _now()) is None
    channel.close()


def test_a_send_that_filed_its_copy_before_a_crash_is_found_by_a_new_process(
    channel: EmailChannel, mailbox: Mailbox, endpoint: str
) -> None:
    sent = channel.send(probe())
    fresh = _open(mailbox, endpoint)
    assert fresh.find_sent(probe(), sent.sent_at) == sent
    assert fresh.find_sent(probe("p0002"), sent.sent_at) is None
    fresh.close()


def test_a_wrong_password_names_the_credential(mailbox: Mailbox, endpoint: str) -> None:
    channel = EmailChannel(mailbox.address, endpoint, token_salt="t", password="wrong")
    with pytest.raises(AuthError, match="EMAIL_PASSWORD"):
        channel.open()


def test_a_refused_smtp_login_is_reported_when_the_channel_opens(
    mailbox: Mailbox, smtp: SmtpReceiver, endpoint: str
) -> None:
    smtp.mailbox = replace(mailbox, password="the SMTP server wants another")
    with pytest.raises(AuthError, match=r"SMTP server .* refused the login"):
        _open(mailbox, endpoint)


def test_the_password_comes_from_the_credentials(
    mailbox: Mailbox, endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MYSTERY_CONFIG_DIR", str(tmp_path))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
    monkeypatch.delenv("MYSTERY_EMAIL_PASSWORD", raising=False)
    with pytest.raises(AuthError, match="mystery auth set email"):
        EmailChannel(mailbox.address, endpoint, token_salt="t").open()
    monkeypatch.setenv("MYSTERY_EMAIL_PASSWORD", mailbox.password)
    channel = EmailChannel(mailbox.address, endpoint, token_salt="t")
    channel.open()
    channel.close()


def test_a_missing_folder_is_reported_when_the_channel_opens(
    mailbox: Mailbox, endpoint: str
) -> None:
    with pytest.raises(ChannelError, match="'Spam'"):
        _open(mailbox, endpoint.replace("/INBOX,Junk", "/INBOX,Spam"))


# -- with the runner ---------------------------------------------------------------------------


def test_the_runner_records_email_probes_and_replies_at_the_servers_times(
    mailbox: Mailbox, smtp: SmtpReceiver, endpoint: str, tmp_path: Path
) -> None:
    today = date.today()
    study = Study.model_validate({
        "name": "mail-t", "year": (today - timedelta(days=2)).year, "cutoff": "7d",
        "channels": {"email": {"account": mailbox.address, "endpoint": "https://placeholder",
                               "poll_every": "1m"}},
        "questions": [{"id": "q", "text": "Hi {brand}, do you deliver on Sundays?"}],
        "schedule": {"start": str(today - timedelta(days=2)), "end": str(today - timedelta(1)),
                     "probes_per_brand": 1, "min_gap": "1h",
                     "windows": [{"days": "daily", "start": "00:00", "end": "24:00"}]},
        "brands": [
            {"name": "Acme", "handles": {"email": BRAND}, "aliases": {"email": [AGENT]}},
            {"name": "Globex", "handles": {"email": "care@globex.test"}},
        ],
    })
    config = study.channels["email"].model_copy(update={"endpoint": endpoint})
    study = study.model_copy(update={"channels": {"email": config}})
    base = _now()
    replies = {BRAND: [(base + timedelta(minutes=3), BRAND, {"Auto-Submitted": "auto-replied"}),
                       (base + timedelta(minutes=50), AGENT, {})]}

    def answer(message: EmailMessage) -> None:
        for at, sender, headers in replies.get(str(message["To"]), []):
            mailbox.append("INBOX", brand_reply(message, sender=sender, date=at, body="Yes.",
                                                headers=headers), at)

    smtp.brands[BRAND] = answer
    smtp.brands["care@globex.test"] = lambda m: None
    channel = EmailChannel(mailbox.address, endpoint, token_salt=study.name,
                           password=mailbox.password, visibility_lag=timedelta(0))
    channel.open()
    clock = VirtualClock(base)
    with Store.open(tmp_path / "mail.db") as store:
        store.initialise(study, make_plan(study))
        runner = Runner(study, store, {"email": channel}, clock)
        runner.step()  # both probes are due: sent
        clock.sleep_until(base + timedelta(minutes=2))
        runner.step()  # polled
        sent = {p.brand: p for p in store.probes()}
        recorded = store.replies()
    channel.close()

    truth = mailbox.server.internaldates(mailbox.address, "Sent")
    assert {p.sent_at for p in sent.values()} == {truth[p.message_id or ""]
                                                  for p in sent.values()}
    assert [(r.probe_id, r.created_at) for r in recorded] == [
        (sent["Acme"].id, at) for at, _, _ in replies[BRAND]]
    assert all(r.auto_code != "not_brand" for r in recorded)  # the agent is a brand alias


# -- without servers: the endpoint, INTERNALDATE, FETCH answers, bodies ------------------------


def test_the_endpoint_names_both_servers_with_safe_defaults() -> None:
    plain = parse_endpoint("imaps://imap.example.org")
    assert plain.imap == ImapAddress("imap.example.org", 993, "tls")
    assert (plain.smtp.host, plain.smtp.port, plain.smtp.security) == (
        "imap.example.org", 465, "tls")
    assert (plain.folders, plain.sent_folder, plain.login) == (("INBOX",), "Sent", None)

    full = parse_endpoint("imap://127.0.0.1:10143/INBOX,Junk?smtp=smtp://127.0.0.1:2525"
                          "&sent=Sent%20Items&login=jane")
    assert full.imap == ImapAddress("127.0.0.1", 10143, "none")  # clear text: loopback only
    assert (full.smtp.port, full.smtp.security) == (2525, "none")
    assert (full.folders, full.sent_folder, full.login) == (("INBOX", "Junk"), "Sent Items",
                                                            "jane")
    remote = parse_endpoint("imap://mail.example.org?smtp=smtp://mail.example.org")
    assert (remote.imap.security, remote.smtp.security, remote.smtp.port) == (
        "starttls", "starttls", 587)


@pytest.mark.parametrize(("endpoint", "message"), [
    ("https://mail.example.org", "must start with imaps:// or imap://"),
    ("imaps://mail.example.org?smtpp=smtps://x", "unknown option"),
    ("imaps://mail.example.org?smtp=http://x", "must start with smtps:// or smtp://"),
    ("imaps://:993", "no host"),
])
def test_a_bad_endpoint_names_the_part_to_fix(endpoint: str, message: str) -> None:
    with pytest.raises(ChannelError, match=message):
        parse_endpoint(endpoint)


def test_internaldate_is_read_as_utc_whatever_the_locale() -> None:
    assert parse_internaldate(" 2-Mar-2026 09:14:05 +0100") == datetime(
        2026, 3, 2, 8, 14, 5, tzinfo=UTC)
    assert parse_internaldate(format_internaldate(datetime(2026, 11, 1, 6, 30, tzinfo=UTC))) \
        == datetime(2026, 11, 1, 6, 30, tzinfo=UTC)


def test_fetch_answers_are_read_whatever_the_order_of_their_items() -> None:
    fetched = parse_fetch([
        (b'1 (INTERNALDATE "02-Mar-2026 09:14:05 +0000" BODY[HEADER] {4}', b"a: b"),
        b" UID 7)",
        b'2 (UID 9 INTERNALDATE "03-Mar-2026 10:00:00 +0000")',
    ])
    assert [(f.uid, f.internaldate, f.section("BODY[HEADER]")) for f in fetched] == [
        (7, datetime(2026, 3, 2, 9, 14, 5, tzinfo=UTC), b"a: b"),
        (9, datetime(2026, 3, 3, 10, 0, tzinfo=UTC), b""),
    ]
    with pytest.raises(ChannelError, match="unreadable INTERNALDATE"):
        parse_fetch([b'3 (UID 4 INTERNALDATE "yesterday")'])


def test_an_html_reply_is_read_as_text() -> None:
    header = b"Content-Type: text/html; charset=utf-8\r\n\r\n"
    assert body_text(header, b"<p>Yes &amp; we <b>do</b>.</p>") == "Yes & we  do ."


def test_connect_makes_the_email_channel_with_the_study_as_token_salt(
    mailbox: Mailbox, endpoint: str
) -> None:
    study = Study.model_validate({
        "name": "salted", "year": 2026,
        "channels": {"email": {"account": mailbox.address, "endpoint": "https://placeholder"}},
        "questions": [{"id": "q", "text": "Hi {brand}?"}],
        "schedule": {"start": "2026-03-02", "end": "2026-03-06", "probes_per_brand": 1},
        "brands": [{"name": "Acme", "handles": {"email": BRAND}}],
    })
    channel = _make_channel("email", mailbox.address, study, endpoint, False)
    assert isinstance(channel, EmailChannel) and channel.token_salt == "salted"
    with pytest.raises(MysteryError, match="sandbox does not emulate email"):
        _make_channel("email", mailbox.address, study, "sandbox", True)
