"""Real mail servers on loopback for the email channel's tests: Dovecot (IMAP + LMTP) and an
SMTP receiver (aiosmtpd) that delivers into it and plays the brands.

Dovecot comes from Debian's packages (``.ci/run`` installs ``dovecot-imapd dovecot-lmtpd``).
It runs in the foreground from a config written to a fresh temporary folder: loopback only,
unprivileged ports, no TLS, a ``passwd-file`` holding a fixed pool of accounts (one per
test), Maildir homes in the same folder. As root (CI) the login processes run as Debian's
``dovenull`` and mail is owned by ``nobody`` (Dovecot refuses mail access as uid 0); as
another user, everything runs as that user.

Brand replies are written with IMAP ``APPEND`` and an explicit date-time, so each reply's
INTERNALDATE is known exactly and a test can assert that the channel reports exactly that time.
"""

from __future__ import annotations

import contextlib
import ctypes
import imaplib
import logging
import os
import pwd
import shutil
import signal
import smtplib
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from mystery.channels.imap import format_internaldate

INSTALL_HINT = (
    "Dovecot is not installed, and the email channel's tests need a real IMAP server: run "
    "'bash .ci/run' (it installs it), or 'apt-get install -y dovecot-imapd dovecot-lmtpd'"
)
DOMAIN = "example.org"
_SERVICES = ("/usr/lib/dovecot/imap", "/usr/lib/dovecot/lmtp")  # dovecot-imapd, dovecot-lmtpd
POOL = 200


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _config(root: Path, imap_port: int, lmtp_port: int) -> str:
    if os.geteuid() == 0:
        login_user, internal_user = "dovenull", "dovecot"
        internal_group = "dovecot"
        mail = pwd.getpwnam("nobody")
        chroot = ""
    else:
        me = pwd.getpwuid(os.geteuid())
        login_user = internal_user = me.pw_name
        internal_group = _group_name(me.pw_gid)
        mail = me
        chroot = "  chroot =\n"
    return f"""
protocols = imap lmtp
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
default_login_user = {login_user}
default_internal_user = {internal_user}
default_internal_group = {internal_group}
first_valid_uid = 1
first_valid_gid = 1
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={mail.pw_uid} gid={mail.pw_gid} home={root}/home/%u
}}
mail_location = maildir:~/Maildir
mail_fsync = never
namespace inbox {{
  inbox = yes
  mailbox Sent {{
    special_use = \\Sent
    auto = subscribe
  }}
  mailbox Junk {{
    special_use = \\Junk
    auto = subscribe
  }}
}}
service imap-login {{
{chroot}  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {lmtp_port}
  }}
}}
service anvil {{
{chroot}  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"""


def _group_name(gid: int) -> str:
    import grp

    return grp.getgrgid(gid).gr_name


class Dovecot:
    """A Dovecot instance of our own, started in the foreground and stopped by its pid."""

    def __init__(self) -> None:
        binary = shutil.which("dovecot") or "/usr/sbin/dovecot"
        if not all(os.path.exists(p) for p in (binary, *_SERVICES)):
            raise FileNotFoundError(INSTALL_HINT)
        self.binary = binary
        self.root = Path(tempfile.mkdtemp(prefix="mystery-dovecot-"))
        self.root.chmod(0o755)  # mail processes run as another user and must reach their home
        (self.root / "home").mkdir()
        # A fixed pool of accounts: Dovecot notices a changed passwd-file by its mtime in
        # whole seconds, so accounts added one by one in a fast test run would go unseen.
        self._users = {f"researcher{n}@{DOMAIN}": f"pass-{n}-word" for n in range(1, POOL + 1)}
        self._free = list(self._users)
        (self.root / "passwd").write_text(
            "".join(f"{a}:{{PLAIN}}{p}::::::\n" for a, p in self._users.items()))
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            os.chown(self.root / "home", nobody.pw_uid, nobody.pw_gid)
        self.imap_port = free_port()
        self.lmtp_port = free_port()
        self.config = self.root / "dovecot.conf"
        self.config.write_text(_config(self.root, self.imap_port, self.lmtp_port))
        self._lock = threading.Lock()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "-F", "-c", str(self.config)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Dovecot exited at start:\n{self._output()}")
            if _answers(self.imap_port, b"* OK") and _answers(self.lmtp_port, b"220"):
                return
            time.sleep(0.05)
        raise RuntimeError(f"Dovecot did not start within 15 s:\n{self._output()}")

    def _output(self) -> str:
        log = self.root / "dovecot.log"
        text = log.read_text(errors="replace") if log.exists() else ""
        if self.process is not None and self.process.poll() is not None and self.process.stdout:
            text += self.process.stdout.read().decode(errors="replace")
        return text

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        if self.process is not None and self.process.stdout:
            self.process.stdout.close()
        shutil.rmtree(self.root, ignore_errors=True)

    # -- users and mail --------------------------------------------------------------------

    def take_user(self) -> tuple[str, str]:
        """A researcher account no test has used yet, as (address, password)."""
        with self._lock:
            if not self._free:
                raise RuntimeError(f"all {POOL} test accounts are used; raise POOL")
            address = self._free.pop(0)
            return address, self._users[address]

    @contextlib.contextmanager
    def imap(self, address: str) -> Iterator[imaplib.IMAP4]:
        conn = imaplib.IMAP4("127.0.0.1", self.imap_port, timeout=10)
        conn.login(address, self._users[address])
        try:
            yield conn
        finally:
            conn.logout()

    def append(self, address: str, folder: str, raw: bytes, internaldate: datetime) -> None:
        """File ``raw`` in ``folder`` with exactly ``internaldate`` as its arrival time."""
        with self.imap(address) as conn:
            typ, data = conn.append(folder, "", format_internaldate(internaldate), raw)
            assert typ == "OK", data

    def deliver(self, sender: str, recipient: str, raw: bytes) -> None:
        """Deliver as a mail server would (LMTP): the server stamps the arrival time."""
        with smtplib.LMTP("127.0.0.1", self.lmtp_port, timeout=10) as lmtp:
            lmtp.sendmail(sender, [recipient], raw)

    def internaldates(self, address: str, folder: str) -> dict[str, datetime]:
        """Message-ID → INTERNALDATE for every message in ``folder``: the ground truth."""
        from mystery.channels.imap import parse_fetch
        from mystery.channels.mailparse import parse_headers

        with self.imap(address) as conn:
            conn.select(folder, readonly=True)
            typ, data = conn.uid("FETCH", "1:*", "(UID INTERNALDATE BODY.PEEK[HEADER])")
            out = {}
            for item in parse_fetch(data if typ == "OK" else []):
                headers = parse_headers(item.section("BODY[HEADER]"))
                if headers.message_id and item.internaldate:
                    out[headers.message_id] = item.internaldate
            return out


def _die_with_parent() -> None:
    """In the child, before Dovecot starts: have the kernel stop it (SIGTERM) if the test
    process dies without its teardown (killed by a timeout), so no Dovecot outlives a run."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _answers(port: int, greeting: bytes) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            return s.recv(64).startswith(greeting)
    except OSError:
        return False


# -- the SMTP side -----------------------------------------------------------------------------

BrandBehaviour = Callable[[EmailMessage], None]


@dataclass
class Mailbox:
    """One researcher's account on the Dovecot instance: a fresh one per test."""

    server: Dovecot
    address: str
    password: str

    def append(self, folder: str, raw: bytes, internaldate: datetime) -> None:
        self.server.append(self.address, folder, raw, internaldate)


@dataclass
class SmtpReceiver:
    """An SMTP submission server (AUTH required) on loopback.

    Mail for the researcher is delivered into Dovecot over LMTP; mail for anyone else goes to
    that brand's behaviour (``brands[address]``), which may answer by appending replies to the
    researcher's mailbox. ``fault`` makes the next message fail: ``"defer"`` (451),
    ``"refuse"`` (550 on the recipient), ``"drop-after"`` (delivered, then the connection is
    cut before the reply: an uncertain send) or ``"drop-before"`` (cut, nothing delivered).
    """

    mailbox: Mailbox
    port: int = 0
    brands: dict[str, BrandBehaviour] = field(default_factory=dict)
    received: list[tuple[str, list[str], EmailMessage]] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    fault: str | None = None
    _controller: Controller | None = None

    def start(self) -> None:
        # aiosmtpd warns on every login about an attribute it sets itself; keep errors only.
        logging.getLogger("mail.log").setLevel(logging.ERROR)
        self.port = free_port()
        self._controller = Controller(
            _Handler(self), hostname="127.0.0.1", port=self.port,
            authenticator=self._authenticate, auth_require_tls=False,
        )
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()

    def _authenticate(self, server: SMTP, session: Session, envelope: Envelope,
                      mechanism: str, auth_data: Any) -> AuthResult:
        ok = (isinstance(auth_data, LoginPassword)
              and auth_data.login.decode() == self.mailbox.address
              and auth_data.password.decode() == self.mailbox.password)
        return AuthResult(success=ok, handled=False)

    def accept(self, sender: str, recipients: list[str], raw: bytes) -> None:
        message = message_from_bytes(raw, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.received.append((sender, recipients, message))
        for rcpt in recipients:
            if rcpt.lower() == self.mailbox.address.lower():
                self.mailbox.server.deliver(sender, rcpt, raw)
            elif rcpt in self.brands:
                self.brands[rcpt](message)


class _Handler:
    def __init__(self, receiver: SmtpReceiver) -> None:
        self.receiver = receiver

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        if self.receiver.fault == "refuse" and address != self.receiver.mailbox.address:
            self.receiver.fault = None
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if not session.authenticated:
            return "530 5.7.0 Authentication required"
        fault, self.receiver.fault = self.receiver.fault, None
        if fault == "defer":
            return "451 4.3.0 Try again later"
        if fault == "drop-before":
            assert server.transport is not None
            server.transport.close()
            return "421 closing"
        content = envelope.original_content or b""
        try:
            self.receiver.accept(str(envelope.mail_from), list(envelope.rcpt_tos), content)
        except Exception as exc:  # surfaced by the fixture: a test never passes on a lost error
            self.receiver.errors.append(exc)
            return "451 4.3.0 test receiver failed"
        if fault == "drop-after":
            assert server.transport is not None
            server.transport.close()
        return "250 2.0.0 OK"
