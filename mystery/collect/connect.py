"""Open what a run needs: the channels, the clock, and — for sandbox studies — the sandbox.

A study whose channels say ``endpoint = "sandbox"`` runs against the built-in emulator on a
virtual clock. By default it is started in this process on a free loopback port and dies with
the run; a run that resumes a store starts a fresh one and rebuilds its world from the store's
``history`` (:mod:`mystery.sandbox.replay`: the same posts at the same instants give the same
ids and the same replies, each checked), with its clock where the store's last record left it.
``sandbox_url`` points at a standalone ``mystery sandbox`` instead, which keeps its world (and
clock) while runners stop and restart, so nothing is rebuilt. Either way the channel code is the
real one, talking HTTP to loopback: only the base URL differs from the real platform.
"""

from __future__ import annotations

import time as _time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

import httpx

from mystery.channels.base import Channel
from mystery.clock import Clock, RealClock, iso, parse_iso
from mystery.errors import AuthError, MysteryError, RateLimited, SandboxError, TransientError
from mystery.study.model import Study
from mystery.words import HAND_LOGGED_CHANNELS

if TYPE_CHECKING:
    from mystery.sandbox.replay import History
    from mystery.sandbox.server import SandboxServer


@dataclass
class Lane:
    """The channels one lane of a runner opened, each as one account (channel → account)."""

    channels: dict[str, Channel]
    # Channels that refused our credentials while others opened: the run goes on without them.
    stopped: dict[str, str] = field(default_factory=dict)


@dataclass
class Connection:
    lanes: list[Lane]
    clock: Clock
    sandbox_url: str | None
    # The sandbox world's id (None on a real platform): a store keeps the one it sent to.
    world_id: str | None = None

    @property
    def channels(self) -> dict[str, Channel]:
        """The first lane's channels (the only lane of a runner serving one account each)."""
        return self.lanes[0].channels

    @property
    def stopped(self) -> dict[str, str]:
        return self.lanes[0].stopped


class RemoteSandboxClock:
    """The virtual clock of a standalone sandbox, read and advanced over its control API.

    The last value seen is cached: one request per jump, none per read. ``name`` (the accounts
    the runner serves) announces the runner to the sandbox, which then moves its clock only to
    the earliest instant every announced runner has asked for (:mod:`mystery.sandbox.runners`):
    several runners of a team study sharing one sandbox each send at their planned instants,
    however different their paces, instead of a lagging one finding the clock past them. A wait
    is answered within a second with the time reached so far; the clock asks again until it
    reaches ``when``. Every time measured still comes from the sandbox's own timestamps.
    """

    def __init__(self, url: str, name: str | None = None) -> None:
        self._http = httpx.Client(base_url=url, timeout=30)
        self._name = name
        self._id = uuid.uuid4().hex if name else None
        if self._id is None:
            self._now = parse_iso(self._json("GET", "/_sandbox/clock")["now"])
        else:
            joined = self._json("POST", "/_sandbox/runners", {"runner": self._id, "name": name})
            self._now = parse_iso(joined["now"])

    def _json(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        try:
            response = self._http.request(method, path, json=body)
            response.raise_for_status()
            return response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise SandboxError(f"the sandbox at {self._http.base_url} failed: {exc}") from None

    def now(self) -> datetime:
        return self._now

    def close(self) -> None:
        if self._id is not None:
            with suppress(SandboxError):  # a sandbox that is gone waits for nobody
                self._json("DELETE", "/_sandbox/runners", {"runner": self._id})
        self._http.close()

    def sleep_until(self, when: datetime) -> None:
        if when > self._now:
            # The sandbox keeps milliseconds: round up, or a wake-up at .5 ms would land just
            # before ``when`` and the runner would wait for it forever.
            when += timedelta(microseconds=(-when.microsecond) % 1000)
            body: dict[str, Any] = {"advance_to": iso(when)}
            if self._id is not None:
                body |= {"runner": self._id, "name": self._name}
            while True:
                self._now = parse_iso(self._json("POST", "/_sandbox/clock", body)["now"])
                if self._now >= when:
                    return


def world_start(study: Study) -> datetime:
    """The virtual clock starts at local midnight of the schedule's first day."""
    from zoneinfo import ZoneInfo

    return datetime.combine(study.schedule.start, time(0), ZoneInfo(study.timezone))


def _put_world(url: str, study: Study) -> str:
    """Give the sandbox the study's world (the same world again is a no-op); its id."""
    from mystery.sandbox.spec import WorldSpec

    body = WorldSpec.from_study(study, world_start(study)).to_body()
    try:
        response = httpx.put(f"{url}/_sandbox/world", json=body, timeout=30)
    except httpx.HTTPError as exc:
        raise SandboxError(
            f"cannot reach the sandbox at {url} ({type(exc).__name__}); start it with "
            "'mystery sandbox' or drop --sandbox-url to run one in-process"
        ) from None
    if response.status_code == 409:
        raise SandboxError(
            f"the sandbox at {url} already holds a different world (another study or another "
            "version of this one); restart 'mystery sandbox' for a fresh one"
        )
    if response.status_code >= 400:
        raise SandboxError(f"the sandbox at {url} refused the study: {response.text[:300]}")
    try:
        return str(response.json()["id"])
    except (ValueError, KeyError, TypeError):
        raise SandboxError(f"the sandbox at {url} answered nonsense to PUT /_sandbox/world: "
                           f"{response.text[:200]}") from None


def _rebuild(server: SandboxServer, history: History) -> None:
    """Give a fresh in-process sandbox the world an earlier run left, or refuse: a study must
    never be finished against brands that were not the ones it asked."""
    from mystery.sandbox.replay import DifferentWorld, replay

    try:
        replay(server.world, history)
    except DifferentWorld as exc:
        raise SandboxError(
            f"cannot resume in the in-process sandbox: rebuilt from the store, its world differs "
            f"from the one the earlier run talked to ({exc}), so the replies the store waits "
            "for would never come. Resume with the version of mystery that began the study, or "
            "delete the store to start the sandbox study again"
        ) from None


def _make_channel(name: str, account: str, study: Study, base_url: str, sandbox: bool,
                  timeout: float = 30.0) -> Channel:
    """The channel ``name`` as the researcher's ``account`` there (one of its accounts)."""
    config = study.channels[name]
    if name == "x":
        from mystery.channels.x import XChannel

        lag = timedelta(0) if sandbox else timedelta(seconds=60)
        return XChannel(account, base_url, visibility_lag=lag, sandbox=sandbox,
                        timeout=timeout, read_dms=config.read_dms)
    if name == "mastodon":
        from mystery.channels.mastodon import MastodonChannel

        lag = timedelta(0) if sandbox else timedelta(seconds=60)
        return MastodonChannel(account, base_url, visibility_lag=lag, sandbox=sandbox,
                               timeout=timeout)
    if name == "bluesky":
        from mystery.channels.bluesky import BlueskyChannel

        lag = timedelta(0) if sandbox else timedelta(seconds=60)
        return BlueskyChannel(account, base_url, visibility_lag=lag, sandbox=sandbox,
                              timeout=timeout)
    if name == "email":
        if sandbox:
            raise MysteryError(
                "the sandbox does not emulate email; set channels.email.endpoint to the "
                "researcher's mail server, e.g. \"imaps://imap.example.org/INBOX,Junk?smtp="
                "smtps://smtp.example.org\" (see mystery/channels/mailserver.py)"
            )
        from mystery.channels.email import EmailChannel

        # The token salt is the study's name: a new wave's probes never match an old one's.
        return EmailChannel(account, base_url, token_salt=study.name, timeout=timeout)
    raise MysteryError(
        f"channel {name!r} cannot be collected automatically yet; remove [channels.{name}] "
        "or log it by hand"
    )


OPEN_ATTEMPTS = 5
"""Tries to open a channel whose platform is failing: waits of 1, 2, 4 and 8 s between them
(a 429's own reset instead, up to a minute)."""


def _quiet(_: str) -> None:
    return None


def _open(name: str, channel: Channel, on_notice: Callable[[str], None],
          sleep: Callable[[float], None]) -> None:
    """Open ``channel``, riding out a platform's passing trouble at start-up as the runner
    does later: a 503 when a study starts is no reason to give up on it."""
    for attempt in range(1, OPEN_ATTEMPTS + 1):
        try:
            channel.open()
            return
        except (TransientError, RateLimited) as exc:
            if attempt == OPEN_ATTEMPTS:
                raise
            wait = 2.0 ** (attempt - 1)
            if isinstance(exc, RateLimited) and exc.reset_at is not None:
                until = (exc.reset_at - datetime.now(UTC)).total_seconds()
                wait = min(60.0, max(1.0, until))
            on_notice(f"{name}: cannot open yet ({exc}); trying again in {wait:g} s "
                      f"({attempt} of {OPEN_ATTEMPTS - 1} retries)")
            sleep(wait)


@contextmanager
def connect(study: Study, *, sandbox_url: str | None = None, timeout: float = 30.0,
            history: History | None = None, sent_to: str | None = None,
            on_notice: Callable[[str], None] = _quiet,
            sleep: Callable[[float], None] = _time.sleep,
            lanes: Sequence[Mapping[str, str]] | None = None) -> Iterator[Connection]:
    """Yield open channels and the right clock; stop an in-process sandbox afterwards.

    ``timeout`` bounds each HTTP request to a platform, in seconds. A channel whose credentials
    are refused is left out (and named in ``stopped``) while the others run; if none opens, the
    first refusal is raised. ``history``: what an earlier run sent, to rebuild an in-process
    sandbox's world from before any channel opens (unused with ``sandbox_url``, whose world
    lives on). ``sent_to``: the id of the standalone sandbox world a store has sent probes to;
    another world there (a restarted sandbox) is refused. A platform that fails to answer while
    a channel opens (5xx, a timeout, a 429) is asked again, backing off, with a notice
    (``on_notice``): the run starts when it answers, or fails with its last error after
    :data:`OPEN_ATTEMPTS` tries. ``lanes``: the researcher's account each channel is opened
    as, per lane (:func:`mystery.collect.run.lanes`: a runner serving several accounts of a
    channel opens that channel once per account, each with its own credentials), and only
    those channels; by default one lane of every channel, as its first account.
    """
    # Hand-logged channels have no automatic channel: 'mystery log' records them.
    if lanes is None:
        lanes = [{n: c.account_names[0] for n, c in study.channels.items()}]
    lanes = [{n: a for n, a in lane.items() if n not in HAND_LOGGED_CHANNELS}
             for lane in lanes]
    automated = {n: study.channels[n] for lane in lanes for n in lane}
    uses_sandbox = [n for n, c in automated.items() if c.is_sandbox]
    uses_real = [n for n, c in automated.items() if not c.is_sandbox]
    if uses_sandbox and uses_real:
        raise MysteryError(
            f"channels {', '.join(uses_sandbox)} use the sandbox but {', '.join(uses_real)} a "
            "real endpoint; a study runs wholly in the sandbox or wholly for real"
        )
    server = None
    clock: Clock | None = None
    world_id: str | None = None
    opened: list[Lane] = []
    url = sandbox_url.rstrip("/") if sandbox_url else None
    try:
        if uses_sandbox:
            if url is None:
                from mystery.sandbox.server import SandboxServer

                server = SandboxServer()
                server.start()
                url = server.url
                world_id = _put_world(url, study)
                if history is not None:
                    _rebuild(server, history)
                clock = server.world.clock
            else:
                world_id = _put_world(url, study)
                if sent_to is not None and world_id != sent_to:
                    raise SandboxError(
                        f"the sandbox at {url} is not the world this study's store sent to "
                        f"(world {world_id[:8]}, not {sent_to[:8]}): it was restarted, so it "
                        "knows none of the probes the store is waiting on and their replies "
                        "can never come. Start the study again with a new store (--db), or "
                        "keep one 'mystery sandbox' running while a study resumes"
                    )
                # Named by every account it serves: a restart for the same ones replaces it.
                served = sorted({f"{n}:{a}" for lane in lanes for n, a in lane.items()})
                clock = RemoteSandboxClock(url, " ".join(served))
        else:
            clock = RealClock()
        refused: list[AuthError] = []
        for lane in lanes:
            opened.append(Lane({}))
            for name, account in lane.items():
                config = study.channels[name]
                base = url if config.is_sandbox and url else config.endpoint
                channel = _make_channel(name, account, study, base, config.is_sandbox, timeout)
                opened[-1].channels[name] = channel
                try:
                    _open(name, channel, on_notice, sleep)
                except AuthError as exc:
                    opened[-1].channels.pop(name).close()
                    opened[-1].stopped[name] = str(exc)
                    refused.append(exc)
        if refused and not any(o.channels for o in opened):
            raise refused[0]
        yield Connection(opened, clock, url, world_id)
    finally:
        for lane_opened in opened:
            for channel in lane_opened.channels.values():
                channel.close()
        if isinstance(clock, RemoteSandboxClock):
            clock.close()
        if server is not None:
            server.stop()
