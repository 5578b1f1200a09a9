"""Mastodon through its REST API with httpx: the same code for a real instance and the sandbox.

Only the base URL differs (the researcher's instance, or the sandbox on loopback). Why each
choice (research/platforms.md §3, §7.2):

- **Never send twice.** Every post carries an ``Idempotency-Key`` derived from the probe, so a
  post re-sent after an uncertain failure returns the first status instead of a second one.
  The key also hashes the text: probe ids repeat across studies, and Mastodon keeps keys for an
  hour, so a bare probe id could hand one study's status to another.
- **One full mention.** The brand's handle is ``user@domain`` and the probe starts with
  ``@user@domain``; the account is resolved (``/api/v2/search?resolve=true``) before the first
  post to it, because an unresolvable mention is posted as plain text and never notifies anyone.
  ``unlisted`` keeps probes off public timelines (direct mentions are often dropped by brands'
  notification policies).
- **Times** are the statuses' own ``created_at`` (milliseconds), never the moment we polled.
- **Replies** arrive as ``mention`` notifications, paged forward from the cursor with
  ``min_id`` (``since_id`` would return only the newest page of a burst and skip the rest). A
  brand that answers its own holding message replies to *that*, not to our probe, so a reply to
  anyone else's status is traced to its thread's root with the status context.
- **Errors** map to the channel contract: 401/403 → :class:`AuthError` naming
  ``MYSTERY_MASTODON_TOKEN``; 429 → :class:`RateLimited` until ``X-RateLimit-Reset`` (ISO 8601);
  5xx, timeouts, dropped connections, malformed bodies → :class:`TransientError`; other 4xx →
  :class:`Rejected`. Nothing here sleeps or retries.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timedelta
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from mystery import credentials
from mystery.channels.base import Message, Outgoing, Poll, Sent
from mystery.channels.jsonbody import json_body
from mystery.channels.paging import Pages
from mystery.channels.ratelimit import mastodon_reset
from mystery.clock import parse_iso
from mystery.errors import AuthError, ChannelError, RateLimited, Rejected, TransientError

TOKEN = "MASTODON_TOKEN"
PAGE = 80  # notifications per page (the maximum since Mastodon 4.1)
STATUS_PAGE = 40


def _token_help() -> str:
    return (
        f"set {credentials.env_name(TOKEN)} to an access token of the researcher's account "
        "(scopes read:accounts read:notifications read:statuses write:statuses), or run "
        "'mystery auth set mastodon'"
    )


def idempotency_key(outgoing: Outgoing) -> str:
    """Stable per probe *and* text: a retry reuses it, another study never does."""
    digest = hashlib.sha256(outgoing.compose().encode()).hexdigest()[:16]
    return f"mystery-{outgoing.probe_id}-{digest}"


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._paragraphs = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self.parts.append("\n")
        elif tag == "p":
            if self._paragraphs:
                self.parts.append("\n\n")
            self._paragraphs += 1

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def html_to_text(content: str) -> str:
    """A status's sanitised HTML back to text: tags dropped, ``<br>`` and paragraphs as
    newlines. Mentions read ``@user`` (Mastodon shows remote mentions without the domain)."""
    parser = _Text()
    parser.feed(content)
    parser.close()
    return "".join(parser.parts).strip()


def _same_text(a: str, b: str) -> bool:
    return " ".join(a.split()) == " ".join(b.split())


class MastodonChannel:
    """The ``mastodon`` channel. ``account`` is the researcher's ``user`` or ``user@domain``."""

    name = "mastodon"

    def __init__(
        self,
        account: str,
        base_url: str,
        *,
        visibility_lag: timedelta = timedelta(seconds=60),
        sandbox: bool = False,
        visibility: str = "unlisted",
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.account = account
        self.base_url = base_url.rstrip("/")
        self.sandbox = sandbox
        self.visibility = visibility
        self.visibility_lag = visibility_lag
        self.timeout = timeout
        self.transport = transport
        self.requests = 0
        self.account_id = ""
        self.domain = ""
        self._http: httpx.Client | None = None
        self._resolved: set[str] = set()
        self._roots: dict[str, str | None] = {}
        self._warnings: list[str] = []
        self._links: dict[str, dict[str, str]] = {}  # the last answer's Link header
        self.skipped = 0  # items Mastodon sent that could not be used

    # -- plumbing --------------------------------------------------------------------------

    @property
    def http(self) -> httpx.Client:
        if self._http is None:
            raise ChannelError("the Mastodon channel is not open")
        return self._http

    def _request(self, method: str, path: str, what: str, **kwargs: Any) -> httpx.Response:
        """One request, its failures mapped onto the channel contract."""
        self.requests += 1
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise TransientError(
                f"cannot reach Mastodon for {what}: {type(exc).__name__}"
            ) from None
        status = response.status_code
        if status < 400:
            return response
        detail = _error(response)
        if status == 429:
            raise RateLimited(f"Mastodon rate limit on {what}", mastodon_reset(response.headers))
        if status in (401, 403):
            raise AuthError(f"Mastodon refused {what} (HTTP {status}): {detail}; {_token_help()}")
        if status >= 500:
            raise TransientError(f"Mastodon server error on {what}: HTTP {status} {detail}")
        raise Rejected(f"Mastodon rejected {what}: HTTP {status} {detail}")

    def _json(self, method: str, path: str, what: str, kind: type, **kwargs: Any) -> Any:
        response = self._request(method, path, what, **kwargs)
        self._links = {str(k): v for k, v in response.links.items()}
        return json_body(response, "Mastodon", what, kind)

    # -- contract --------------------------------------------------------------------------

    def open(self) -> None:
        # In the sandbox the token names the account (it may emulate several): no secret.
        token = (f"sandbox:{self.account}" if self.sandbox
                 else credentials.get_secret(TOKEN, account=self.account))
        if not token:
            raise AuthError(f"no Mastodon token: {_token_help()}")
        self._http = httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {token}", "User-Agent": "mystery"},
            timeout=self.timeout,
            transport=self.transport,
            trust_env=not self.sandbox,  # loopback needs no proxy lookup
            verify=not self.base_url.startswith("http://"),  # no CA files to load for http
        )
        me = self._json("GET", "/api/v1/accounts/verify_credentials", "verify_credentials", dict)
        instance = self._json("GET", "/api/v2/instance", "GET /api/v2/instance", dict)
        self.account_id = str(me.get("id", ""))
        self.domain = str(instance.get("domain") or urlsplit(self.base_url).hostname or "")
        user, _, domain = self.account.partition("@")
        if str(me.get("username", "")).casefold() != user.casefold() or (
            domain and domain.casefold() != self.domain.casefold()
        ):
            raise AuthError(
                f"the Mastodon token belongs to @{me.get('username')}@{self.domain}, but the "
                f"study's channels.mastodon.account is @{self.account}; fix one of them"
            )
        self._check_policy()

    def _check_policy(self) -> None:
        """Warn when the researcher's notification policy may hide brands' replies (4.3+)."""
        try:
            policy = self._json("GET", "/api/v2/notifications/policy", "notification policy", dict)
        except Rejected:
            return  # an instance older than 4.3 has no policy
        dropped = [k for k, v in policy.items() if k.startswith("for_") and v == "drop"]
        if dropped:
            self._warnings.append(
                f"your notification policy drops {', '.join(dropped)}: brands' replies may "
                "never arrive; set them to accept or filter in Preferences → Notifications"
            )

    def close(self) -> None:
        if self._http is not None:
            self._http.close()

    def brand_authors(self, handles: list[str]) -> None:
        """Nothing to resolve: notifications carry their author's ``acct``."""

    def send(self, outgoing: Outgoing) -> Sent:
        text = outgoing.compose()
        self._resolve(outgoing.handle)
        status = self._json(
            "POST",
            "/api/v1/statuses",
            "POST /api/v1/statuses",
            dict,
            json={"status": text, "visibility": self.visibility},
            headers={"Idempotency-Key": idempotency_key(outgoing)},
        )
        return self._sent(status, text)

    def find_sent(self, outgoing: Outgoing, since: datetime) -> Sent | None:
        """The probe among our own top-level statuses since ``since``, by its text (rendered
        back from HTML) and its mention of the brand."""
        text = outgoing.compose()
        params: dict[str, str] = {"limit": str(STATUS_PAGE), "exclude_replies": "true"}
        path = f"/api/v1/accounts/{self.account_id}/statuses"
        pages = Pages("Mastodon", "GET our statuses")
        while True:
            statuses = self._json("GET", path, "GET our statuses", list, params=params)
            for status in statuses:
                sent = self._sent(status, text)
                if sent.sent_at < since:
                    return None
                if self._is_probe(status, outgoing):
                    return sent
            older = _link(self._links, "next", "max_id")
            if not statuses or older is None:
                return None
            params = {**params, "max_id": pages.next(older)}

    def fetch_own(self, message_id: str) -> Sent | None:
        """Our own status ``message_id`` (``mystery sent`` names it), or None when the server
        has none or it is someone else's; its text as shown, its time the server's."""
        if not message_id.isdigit():
            return None
        try:
            status = self._json("GET", f"/api/v1/statuses/{message_id}", "GET a status", dict)
        except Rejected:
            return None  # 404: no such status here
        account = status.get("account")
        if not isinstance(account, dict) or str(account.get("id")) != self.account_id:
            return None
        return self._sent(status, html_to_text(str(status.get("content", ""))))

    def poll(self, cursor: str | None, now: datetime) -> Poll:
        before = self.requests
        messages: list[Message] = []
        newest = cursor
        base: list[tuple[str, str]] = [
            ("types[]", "mention"),
            ("limit", str(PAGE)),
            ("include_filtered", "true"),
        ]
        # Forward from the cursor with min_id; with none yet, backward through everything.
        step = ("min_id", cursor) if cursor else None
        pages = Pages("Mastodon", "GET notifications")
        while True:
            params = base + ([step] if step else [])
            page = self._json(
                "GET", "/api/v1/notifications", "GET notifications", list, params=params
            )
            links = self._links  # before a thread lookup below replaces them
            for item in page:
                key = str(item.get("id", "")) if isinstance(item, dict) else ""
                if not key.isdigit():
                    self.skipped += 1
                    self._warnings.append(f"skipped a notification without an id: {item!r:.80}")
                    continue
                if newest is None or int(key) > int(newest):
                    newest = key
                if item.get("type") == "mention" and isinstance(item.get("status"), dict):
                    message = self._message(item["status"])
                    if message is not None:
                        messages.append(message)
            if cursor:
                following = _link(links, "prev", "min_id") or newest
                if len(page) < PAGE or following is None:
                    break
                step = ("min_id", pages.next(following))
            else:
                older = _link(links, "next", "max_id")
                if not page or older is None:
                    break
                step = ("max_id", pages.next(older))
        warnings, self._warnings = self._warnings, []
        return Poll(
            messages=messages,
            cursor=newest,
            complete_through=now - self.visibility_lag,
            requests=self.requests - before,
            warnings=warnings,
        )

    # -- helpers ---------------------------------------------------------------------------

    def _resolve(self, handle: str) -> None:
        """Make sure the instance knows ``@handle`` before mentioning it (once per brand)."""
        if handle.casefold() in self._resolved:
            return
        found = self._json(
            "GET",
            "/api/v2/search",
            f"resolving @{handle}",
            dict,
            params={"q": f"@{handle}", "type": "accounts", "resolve": "true", "limit": "5"},
        )
        accounts = found.get("accounts") or []
        if not any(self._acct(a.get("acct", "")) == handle.casefold() for a in accounts):
            raise Rejected(
                f"Mastodon cannot find @{handle} from your instance; check the brand's handle "
                "(write user@domain, as on its profile)"
            )
        self._resolved.add(handle.casefold())

    def _acct(self, acct: str) -> str:
        """``acct`` as the study writes handles: always ``user@domain``, lower-case."""
        acct = acct.lstrip("@").casefold()
        return acct if "@" in acct else f"{acct}@{self.domain.casefold()}"

    def _sent(self, status: dict[str, Any], text: str) -> Sent:
        try:
            return Sent(str(status["id"]), parse_iso(str(status["created_at"])), text)
        except (KeyError, TypeError, ValueError):
            raise TransientError("Mastodon sent a malformed status") from None

    def _is_probe(self, status: dict[str, Any], outgoing: Outgoing) -> bool:
        handle = outgoing.handle.casefold()
        mentions = {self._acct(m.get("acct", "")) for m in status.get("mentions") or []}
        if self._acct(handle) not in mentions:
            return False
        shown = html_to_text(str(status.get("content", "")))
        local = outgoing.handle.split("@", 1)[0]
        return _same_text(shown, outgoing.compose()) or _same_text(
            shown, f"@{local} {outgoing.text}"
        )

    def _message(self, status: dict[str, Any]) -> Message | None:
        try:
            created = parse_iso(str(status["created_at"]))
            author = self._acct(str(status["account"]["acct"]))
            status_id = str(status["id"])
        except (KeyError, TypeError, ValueError):
            self.skipped += 1
            self._warnings.append(f"skipped a malformed status: {status!r:.80}")
            return None
        parent = status.get("in_reply_to_id")
        parent = str(parent) if parent else None
        conversation = None
        if parent is not None:
            if str(status.get("in_reply_to_account_id")) == self.account_id:
                conversation = parent  # a reply to one of our own (top-level) probes
            else:
                conversation = self._root(status_id, parent)
        return Message(
            message_id=status_id,
            author=author,
            text=html_to_text(str(status.get("content", ""))),
            created_at=created,
            in_reply_to=parent,
            conversation_id=conversation,
        )

    def _root(self, status_id: str, parent: str) -> str | None:
        """The first status of the thread ``status_id`` belongs to (cached by parent)."""
        if parent not in self._roots:
            try:
                context = self._json(
                    "GET", f"/api/v1/statuses/{status_id}/context", "GET status context", dict
                )
            except Rejected:  # deleted, or not visible to us: it cannot be ours
                return None
            ancestors = context.get("ancestors") or []
            self._roots[parent] = str(ancestors[0]["id"]) if ancestors else None
        return self._roots[parent]


def _error(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict) and body.get("error"):
        return str(body["error"])
    return response.text[:200]


def _link(links: dict[str, dict[str, str]], rel: str, param: str) -> str | None:
    """``param`` of the ``Link`` header's ``rel`` URL (the server's own paging cursor)."""
    url = links.get(rel, {}).get("url")
    if not url:
        return None
    values = parse_qs(urlsplit(url).query).get(param)
    return values[0] if values and re.fullmatch(r"\d+", values[0]) else None
