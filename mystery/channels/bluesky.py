"""Bluesky through XRPC with httpx: the same code for the real service and the sandbox.

Only the base URL differs (the entryway, ``https://bsky.social``, or the sandbox); after login
the requests go to the account's own PDS, named in the session's DID document. Why each choice
(research/platforms.md §4, §7.3):

- **One session per run.** ``createSession`` is capped (30 per 5 minutes, 300 a day), so the
  channel logs in once when it opens and, when the access token expires (``ExpiredToken``,
  every two hours), calls ``refreshSession``. A request refused for an expired token was never
  processed, so it is sent once more with the fresh token: for a post that is not a retry.
- **A mention is a facet.** The text ``@brand.com`` notifies nobody; the facet carrying the
  brand's DID does, and its range counts UTF-8 *bytes* (an accent or an emoji before the
  mention would shift a character count).
- **Never send twice.** The post's record key is a TID derived from the probe (and its text,
  as probe ids repeat across studies), so a post sent again after an uncertain failure collides
  with the first instead of duplicating it, and a reconciliation finds it at a known address
  (``getRecord`` on the PDS, which has no indexing lag).
- **Times** are the AppView's ``indexedAt``, never the client-claimed ``createdAt`` (anyone can
  write any ``createdAt``); a claim far from ``indexedAt`` is reported as a warning. Note that
  the AppView reports as ``indexedAt`` the earlier of the two (its ``sortAt``).
- **Replies** come from ``listNotifications`` with reasons ``mention`` and ``reply`` (a reply
  that also mentions us arrives only as a mention), newest first, read back to the newest time
  already seen, and are matched on the record's ``reply.parent`` / ``reply.root`` URIs.
- **Errors**: 429 → :class:`RateLimited` until ``RateLimit-Reset`` (else ``Retry-After``); 401,
  403 and dead sessions → :class:`AuthError` naming ``MYSTERY_BLUESKY_APP_PASSWORD``; 5xx,
  timeouts, malformed bodies → :class:`TransientError`; other 400s → :class:`Rejected`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from mystery import credentials
from mystery.channels.atproto import error_message, error_name, mention_facet, probe_rkey
from mystery.channels.base import Message, Outgoing, Poll, Sent
from mystery.channels.jsonbody import json_body
from mystery.channels.paging import Pages
from mystery.channels.ratelimit import atproto_reset
from mystery.clock import iso, parse_iso
from mystery.errors import AuthError, ChannelError, RateLimited, Rejected, TransientError

PASSWORD = "BLUESKY_APP_PASSWORD"
ENTRYWAY = "https://bsky.social"
POST = "app.bsky.feed.post"
PAGE = 100
CLOCK_SKEW = timedelta(minutes=2)  # beyond this, a claimed createdAt is worth a warning
_DEAD_SESSION = ("ExpiredToken", "InvalidToken")
_AUTH_ERRORS = ("AccountTakedown", "AccountDeactivated", "AuthFactorTokenRequired",
                *_DEAD_SESSION)  # fmt: skip


def _password_help() -> str:
    return (
        f"set {credentials.env_name(PASSWORD)} to an app password of the researcher's account "
        "(Settings → Privacy and security → App passwords), or run 'mystery auth set bluesky'"
    )


class BlueskyChannel:
    """The ``bluesky`` channel. ``account`` is the researcher's handle (checked at login)."""

    name = "bluesky"

    def __init__(
        self,
        account: str,
        base_url: str = ENTRYWAY,
        *,
        visibility_lag: timedelta = timedelta(seconds=60),
        sandbox: bool = False,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.account = account
        self.base_url = base_url.rstrip("/")
        self.sandbox = sandbox
        self.visibility_lag = visibility_lag
        self.timeout = timeout
        self.transport = transport
        self.wall_clock = wall_clock  # only for claims (createdAt) and Retry-After
        self.requests = 0
        self.did = ""
        self.pds = self.base_url
        self._http: httpx.Client | None = None
        self._password = ""
        self._access = ""
        self._refresh = ""
        self._dids: dict[str, str] = {}
        self._warnings: list[str] = []
        self._warned: set[str] = set()  # notifications re-read in the overlap warn once
        self.skipped = 0  # items Bluesky sent that could not be used

    # -- plumbing --------------------------------------------------------------------------

    @property
    def http(self) -> httpx.Client:
        if self._http is None:
            raise ChannelError("the Bluesky channel is not open")
        return self._http

    def _send(self, method: str, url: str, what: str, token: str | None,
              **kwargs: Any) -> httpx.Response:  # fmt: skip
        self.requests += 1
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            return self.http.request(method, url, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            raise TransientError(f"cannot reach Bluesky for {what}: {type(exc).__name__}") from None

    def _xrpc(self, method: str, nsid: str, what: str, *, auth: bool = True,
              **kwargs: Any) -> dict[str, Any]:  # fmt: skip
        """One XRPC call; an expired session is refreshed and the call made once more."""
        url = f"{self.pds}/xrpc/{nsid}"
        response = self._send(method, url, what, self._access if auth else None, **kwargs)
        if auth and error_name(response) in _DEAD_SESSION:
            self._renew()
            response = self._send(method, url, what, self._access, **kwargs)
        return self._answer(response, what)

    def _answer(self, response: httpx.Response, what: str) -> dict[str, Any]:
        status = response.status_code
        if status >= 400:
            name, message = error_name(response), error_message(response)
            detail = f"{name}: {message}" if name else f"HTTP {status} {message}"
            if status == 429:
                reset = atproto_reset(response.headers, self.wall_clock())
                raise RateLimited(f"Bluesky rate limit on {what}", reset)
            if status in (401, 403) or name in _AUTH_ERRORS:
                raise AuthError(f"Bluesky refused {what} ({detail}); {_password_help()}")
            if status >= 500:
                raise TransientError(f"Bluesky server error on {what}: {detail}")
            raise Rejected(f"Bluesky rejected {what}: {detail}")
        value: dict[str, Any] = json_body(response, "Bluesky", what)
        return value

    # -- the session -----------------------------------------------------------------------

    def _login(self) -> None:
        body = {"identifier": self.account, "password": self._password}
        response = self._send("POST", f"{self.base_url}/xrpc/com.atproto.server.createSession",
                              "login (createSession)", None, json=body)  # fmt: skip
        if response.status_code == 401:
            raise AuthError(
                f"Bluesky refused the login of {self.account} ({error_message(response)}); "
                f"check channels.bluesky.account and {_password_help()}"
            )
        session = self._answer(response, "login (createSession)")
        self._session(session)
        if str(session.get("handle", "")).casefold() != self.account.casefold():
            raise AuthError(
                f"the Bluesky password belongs to {session.get('handle')}, but the study's "
                f"channels.bluesky.account is {self.account}; fix one of them"
            )

    def _session(self, session: dict[str, Any]) -> None:
        try:
            self._access, self._refresh = str(session["accessJwt"]), str(session["refreshJwt"])
            self.did = str(session.get("did") or self.did)
        except KeyError:
            raise TransientError("Bluesky sent a session without tokens") from None
        # Derived from the app password and as good as it until they expire: out of every log.
        credentials.protect(self._access)
        credentials.protect(self._refresh)
        services = (session.get("didDoc") or {}).get("service") or []
        for service in services:
            if isinstance(service, dict) and service.get("id") == "#atproto_pds":
                self.pds = str(service.get("serviceEndpoint") or self.pds).rstrip("/")

    def _renew(self) -> None:
        """``refreshSession``; only when the refresh token is dead too, one new login."""
        response = self._send("POST", f"{self.pds}/xrpc/com.atproto.server.refreshSession",
                              "refreshSession", self._refresh)  # fmt: skip
        if error_name(response) in _DEAD_SESSION:
            self._login()
            return
        self._session(self._answer(response, "refreshSession"))

    # -- contract --------------------------------------------------------------------------

    def open(self) -> None:
        password = ("sandbox" if self.sandbox
                    else credentials.get_secret(PASSWORD, account=self.account))
        if not password:
            raise AuthError(f"no Bluesky app password: {_password_help()}")
        self._password = password
        self._http = httpx.Client(
            timeout=self.timeout,
            transport=self.transport,
            headers={"User-Agent": "mystery"},
            trust_env=not self.sandbox,  # loopback needs no proxy lookup
            verify=not self.base_url.startswith("http://"),  # no CA files to load for http
        )
        self._login()

    def close(self) -> None:
        if self._http is not None:
            self._http.close()

    def brand_authors(self, handles: list[str]) -> None:
        """Nothing to resolve up front: notifications carry their author's handle."""

    def send(self, outgoing: Outgoing) -> Sent:
        text = outgoing.compose()
        did = self._resolve(outgoing.handle)
        rkey = probe_rkey(self.did, outgoing.probe_id, text)
        try:
            facet = mention_facet(text, outgoing.handle, did)
        except ValueError as exc:
            raise Rejected(f"not posted: {exc}") from None
        record = {
            "$type": POST,
            "text": text,
            "createdAt": iso(self.wall_clock()),  # a claim; never used for timing
            "facets": [facet],
        }
        body = {"repo": self.did, "collection": POST, "rkey": rkey, "record": record}
        try:
            created = self._xrpc("POST", "com.atproto.repo.createRecord", "createRecord",
                                 json=body)  # fmt: skip
        except Rejected:
            found = self._at_rkey(rkey, text)  # a collision with our own earlier attempt
            if found is None:
                raise
            return found
        sent = self._indexed(str(created.get("uri", "")), text)
        if sent is None:
            raise TransientError(
                f"posted {created.get('uri')}, but Bluesky has not indexed it yet; it will be "
                "looked up before anything is sent again"
            )
        return sent

    def find_sent(self, outgoing: Outgoing, since: datetime) -> Sent | None:
        """At the probe's own record key first (an automated post), then by its exact text
        among our posts since ``since`` (a post made by hand)."""
        text = outgoing.compose()
        found = self._at_rkey(probe_rkey(self.did, outgoing.probe_id, text), text)
        if found is not None:
            return found
        params: dict[str, str] = {"actor": self.did, "filter": "posts_no_replies",
                                  "limit": str(PAGE)}  # fmt: skip
        pages = Pages("Bluesky", "getAuthorFeed")
        while True:
            page = self._xrpc("GET", "app.bsky.feed.getAuthorFeed", "getAuthorFeed",
                              params=params)  # fmt: skip
            feed = page.get("feed") or []
            for item in feed:
                post = item.get("post") if isinstance(item, dict) else None
                if not isinstance(post, dict) or item.get("reason"):
                    continue  # a repost is not ours
                sent = _sent(post, text)
                if sent is None:
                    continue
                if sent.sent_at < since:
                    return None
                if (post.get("record") or {}).get("text") == text:
                    return sent
            if not feed or not page.get("cursor"):
                return None
            params = {**params, "cursor": pages.next(str(page["cursor"]))}

    def fetch_own(self, message_id: str) -> Sent | None:
        """Our own post with record key (or ``at://`` URI) ``message_id``, as ``mystery sent``
        names it; None when we have no such post. Its time is the AppView's ``indexedAt``."""
        rkey = message_id.rsplit("/", 1)[-1]
        uri = f"at://{self.did}/{POST}/{rkey}"
        found = self._xrpc("GET", "app.bsky.feed.getPosts", "getPosts", params={"uris": uri})
        posts = [p for p in found.get("posts") or [] if isinstance(p, dict)]
        if not posts or str((posts[0].get("author") or {}).get("did", "")) != self.did:
            return None
        return _sent(posts[0], str((posts[0].get("record") or {}).get("text", "")))

    def poll(self, cursor: str | None, now: datetime) -> Poll:
        before = self.requests
        seen = parse_iso(cursor) if cursor else None
        floor = seen - self.visibility_lag if seen else None
        newest = seen
        messages: list[Message] = []
        page_cursor: str | None = None
        pages = Pages("Bluesky", "listNotifications")
        while True:
            params: list[tuple[str, str]] = [("reasons", "mention"), ("reasons", "reply"),
                                             ("limit", str(PAGE))]  # fmt: skip
            if page_cursor:
                params.append(("cursor", page_cursor))
            page = self._xrpc("GET", "app.bsky.notification.listNotifications",
                              "listNotifications", params=params)  # fmt: skip
            items = page.get("notifications") or []
            reached = False
            for item in items:
                message = self._message(item)
                if message is None:
                    continue
                if floor is not None and message.created_at < floor:
                    reached = True  # newest first: everything below was read before
                    break
                if newest is None or message.created_at > newest:
                    newest = message.created_at
                if message.in_reply_to is not None:
                    messages.append(message)
            if reached or not items or not page.get("cursor"):
                break
            page_cursor = pages.next(str(page["cursor"]))
        warnings, self._warnings = self._warnings, []
        return Poll(
            messages=messages,
            cursor=iso(newest) if newest else cursor,
            complete_through=now - self.visibility_lag,
            requests=self.requests - before,
            warnings=warnings,
        )

    # -- helpers ---------------------------------------------------------------------------

    def _resolve(self, handle: str) -> str:
        key = handle.casefold()
        if key not in self._dids:
            try:
                found = self._xrpc("GET", "com.atproto.identity.resolveHandle", "resolveHandle",
                                   params={"handle": handle})  # fmt: skip
            except Rejected as exc:
                raise Rejected(f"cannot resolve the Bluesky handle {handle}: {exc}; check the "
                               "brand's handle") from None  # fmt: skip
            did = found.get("did")
            if not isinstance(did, str) or not did.startswith("did:"):
                raise TransientError(f"Bluesky resolved {handle} to nonsense: {did!r}")
            self._dids[key] = did
        return self._dids[key]

    def _at_rkey(self, rkey: str, text: str) -> Sent | None:
        """Our post at ``rkey`` with ``text``, if the PDS holds one; its time from the AppView."""
        params = {"repo": self.did, "collection": POST, "rkey": rkey}
        try:
            record = self._xrpc("GET", "com.atproto.repo.getRecord", "getRecord", params=params)
        except Rejected:
            return None  # RecordNotFound
        if (record.get("value") or {}).get("text") != text:
            return None
        sent = self._indexed(str(record.get("uri", "")), text)
        if sent is None:
            raise TransientError(
                f"{record.get('uri')} is posted but not indexed yet; look again later"
            )
        return sent

    def _indexed(self, uri: str, text: str) -> Sent | None:
        found = self._xrpc("GET", "app.bsky.feed.getPosts", "getPosts", params={"uris": uri})
        posts = [p for p in found.get("posts") or [] if isinstance(p, dict)]
        return _sent(posts[0], text) if posts else None

    def _message(self, item: Any) -> Message | None:
        """A notification as a message (``in_reply_to`` None for a bare mention)."""
        try:
            record = item["record"]
            indexed = parse_iso(str(item["indexedAt"]))
            claimed = _claim(record.get("createdAt"))
            message = Message(
                message_id=str(item["uri"]),
                author=str(item["author"]["handle"]).casefold(),
                text=str(record.get("text", "")),
                created_at=indexed,
                in_reply_to=_ref(record, "parent"),
                conversation_id=_ref(record, "root"),
                claimed_at=claimed,
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            self.skipped += 1
            self._warnings.append(f"skipped a malformed notification: {item!r:.80}")
            return None
        if item.get("reason") not in ("mention", "reply"):
            return None
        skew = abs(claimed - indexed) if claimed else None
        if (skew is None or skew > CLOCK_SKEW) and message.message_id not in self._warned:
            self._warned.add(message.message_id)
            self._warnings.append(
                f"{message.message_id}: its client claims createdAt {record.get('createdAt')}, "
                f"but Bluesky indexed it at {iso(indexed)}; timed by indexedAt"
            )
        return message


def _ref(record: dict[str, Any], which: str) -> str | None:
    reply = record.get("reply")
    uri = reply.get(which, {}).get("uri") if isinstance(reply, dict) else None
    return str(uri) if uri else None


def _sent(post: dict[str, Any], text: str) -> Sent | None:
    try:
        return Sent(str(post["uri"]), parse_iso(str(post["indexedAt"])), text)
    except (KeyError, ValueError):
        return None


def _claim(value: Any) -> datetime | None:
    """A record's client-set ``createdAt``, kept as the claim it is (None if unreadable)."""
    try:
        return parse_iso(str(value))
    except ValueError:
        return None
