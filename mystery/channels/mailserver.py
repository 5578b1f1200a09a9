"""Where the researcher's mail lives: the email channel's endpoint, and sending over SMTP.

One endpoint string names both servers, because a study file gives a channel one endpoint::

    imaps://HOST[:PORT][/FOLDER[,FOLDER…]][?smtp=SMTP-URL][&sent=FOLDER][&login=USER]

- ``imaps://`` is IMAP over TLS (port 993); ``imap://`` is IMAP with STARTTLS (port 143), and
  in clear only to a loopback address (a local test server);
- the folders are where replies are looked for, ``INBOX`` by default; add the spam folder
  (``/INBOX,Junk``), where a brand's first answer sometimes lands;
- ``smtp=`` is ``smtps://HOST[:465]`` (implicit TLS) or ``smtp://HOST[:587]`` (STARTTLS; in
  clear only on loopback); by default ``smtps://`` on the IMAP host;
- ``sent=`` is the folder that holds the sent copy whose server time is the probe's time
  (``Sent`` by default; ``[Gmail]/Sent Mail`` on Gmail);
- ``login=`` is the user name of both servers when it is not the address in ``account``.

Example: ``imaps://imap.fastmail.com/INBOX,Spam?smtp=smtps://smtp.fastmail.com&sent=Sent``.
The password is never in the endpoint: it is the ``EMAIL_PASSWORD`` credential.
"""

from __future__ import annotations

import ipaddress
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import parse_qs, unquote, urlsplit

from mystery.channels.imap import ImapAddress
from mystery.errors import AuthError, ChannelError, RateLimited, Rejected, TransientError

_IMAP_PORTS = {"imaps": 993, "imap": 143}
_SMTP_PORTS = {"smtps": 465, "smtp": 587}
_OPTIONS = ("smtp", "sent", "login")


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class SmtpAddress:
    host: str
    port: int
    security: str  # "tls", "starttls" or "none" (loopback only)


@dataclass(frozen=True)
class MailEndpoint:
    imap: ImapAddress
    smtp: SmtpAddress
    folders: tuple[str, ...]
    sent_folder: str
    login: str | None


def _problem(endpoint: str, message: str) -> ChannelError:
    return ChannelError(f"channels.email.endpoint {endpoint!r}: {message}")


def _server(endpoint: str, url: str, ports: dict[str, int], kind: str) -> tuple[str, int, str]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ports:
        raise _problem(endpoint, f"the {kind} server must start with "
                       f"{' or '.join(s + '://' for s in ports)}, not {url!r}")
    if not parts.hostname:
        raise _problem(endpoint, f"no host in {url!r}; write e.g. {scheme}://mail.example.org")
    try:
        port = parts.port or ports[scheme]
    except ValueError:
        raise _problem(endpoint, f"bad port in {url!r}") from None
    tls = scheme.endswith("s")
    security = "tls" if tls else ("none" if is_loopback(parts.hostname) else "starttls")
    return parts.hostname, port, security


def parse_endpoint(endpoint: str) -> MailEndpoint:
    """Read an email endpoint (module docstring); a mistake names the part to fix."""
    host, port, security = _server(endpoint, endpoint, _IMAP_PORTS, "IMAP")
    parts = urlsplit(endpoint)
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(query) - set(_OPTIONS))
    if unknown:
        raise _problem(endpoint, f"unknown option(s) {', '.join(unknown)}; known: "
                       f"{', '.join(_OPTIONS)}")
    options = {k: v[-1] for k, v in query.items()}
    folders = tuple(f for f in (unquote(x).strip() for x in parts.path.strip("/").split(","))
                    if f) or ("INBOX",)
    smtp_url = options.get("smtp") or f"smtps://{host}"
    smtp_host, smtp_port, smtp_security = _server(endpoint, smtp_url, _SMTP_PORTS, "SMTP")
    return MailEndpoint(
        imap=ImapAddress(host, port, security),
        smtp=SmtpAddress(smtp_host, smtp_port, smtp_security),
        folders=folders,
        sent_folder=options.get("sent") or "Sent",
        login=options.get("login") or None,
    )


def _session(address: SmtpAddress, login: str, password: str,
             timeout: float) -> smtplib.SMTP:
    """Connect, secure and log in; the connection is closed again if any step fails."""
    context = ssl.create_default_context()
    server = (smtplib.SMTP_SSL(address.host, address.port, timeout=timeout, context=context)
              if address.security == "tls"
              else smtplib.SMTP(address.host, address.port, timeout=timeout))
    try:
        if address.security == "starttls":
            server.ehlo()
            if not server.has_extn("starttls"):
                raise AuthError(
                    f"the SMTP server {address.host}:{address.port} offers no STARTTLS, so the "
                    "password would travel in clear; use smtps:// in channels.email.endpoint"
                )
            server.starttls(context=context)
        server.ehlo()
        server.login(login, password)
    except BaseException:
        server.close()
        raise
    return server


def smtp_session(address: SmtpAddress, login: str, password: str,
                 timeout: float = 30.0) -> smtplib.SMTP:
    """A logged-in SMTP session. Every failure here happens before any message data is sent,
    so the probe was certainly not sent: an outage is a wait (:class:`RateLimited`), never an
    uncertain send."""
    try:
        return _session(address, login, password, timeout)
    except smtplib.SMTPAuthenticationError:
        raise AuthError(
            f"the SMTP server {address.host} refused the login {login!r}; check EMAIL_PASSWORD "
            "(an app password for providers with two-factor sign-in) and the login"
        ) from None
    except smtplib.SMTPNotSupportedError:
        raise AuthError(
            f"the SMTP server {address.host}:{address.port} does not accept a login here; "
            "use the provider's submission server in smtp= of channels.email.endpoint"
        ) from None
    except (OSError, smtplib.SMTPException) as exc:
        raise RateLimited(
            f"cannot reach the SMTP server {address.host}:{address.port} ({exc}); not sent",
            None,
        ) from None


def submit(server: smtplib.SMTP, message: EmailMessage, sender: str,
           recipients: list[str], brand: str) -> None:
    """Hand ``message`` to the SMTP server, mapping failures onto the channel contract.

    Refusals the server states (a reply code) mean the message was certainly not accepted;
    a connection lost while the data was on its way leaves it *uncertain*
    (:class:`TransientError`), which the runner reconciles before any retry (rule 3)."""
    try:
        refused = server.send_message(message, from_addr=sender, to_addrs=recipients)
    except smtplib.SMTPRecipientsRefused as exc:
        raise Rejected(f"the SMTP server refused the address {brand!r}: "
                       f"{_reply(exc.recipients.get(brand))}") from None
    except smtplib.SMTPSenderRefused as exc:
        raise AuthError(f"the SMTP server refused to send as {sender!r} ({exc.smtp_code} "
                        f"{exc.smtp_error!r}); check channels.email.account") from None
    except (smtplib.SMTPDataError, smtplib.SMTPHeloError) as exc:
        if isinstance(exc, smtplib.SMTPHeloError) or 400 <= exc.smtp_code < 500:
            raise RateLimited(f"the SMTP server deferred the message ({exc.smtp_code}); "
                              "not sent", None) from None
        raise Rejected(f"the SMTP server refused the message ({exc.smtp_code} "
                       f"{exc.smtp_error!r})") from None
    except (OSError, smtplib.SMTPException) as exc:
        raise TransientError(f"the SMTP connection failed while sending ({exc}); "
                             "it may or may not have gone out") from None
    if brand.lower() in {r.lower() for r in refused}:
        raise Rejected(f"the SMTP server refused the address {brand!r}: "
                       f"{_reply(refused[brand])}")


def _reply(reply: tuple[int, bytes] | None) -> str:
    if reply is None:
        return "refused"
    return f"{reply[0]} {reply[1].decode('utf-8', 'replace')}"
