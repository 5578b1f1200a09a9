"""The study file: one wave of measurement, as a versioned TOML file (plus an optional brands CSV).

Why pydantic with ``extra="forbid"``: a typo such as ``cuttoff`` must be an error naming the key,
never a silent default that changes what a study measures. Every problem is collected and
reported at once as ``file: key.path: message (fix)`` lines by
:func:`~mystery.study.load.load_study`, which raises
:class:`~mystery.errors.StudyError` (the CLI prints it and exits 1).

The shape, with the keys a researcher writes::

    name, series, year, title, timezone, cutoff, synthetic, brands_csv
    [channels.<x|mastodon|bluesky|email|phone|...>]  account (or accounts), endpoint, mode,
                                                       poll_every
    [[questions]]                                      id, text   ("{brand}" is replaced)
    [schedule]                                         start, end, probes_per_brand, min_gap, seed
    [[schedule.windows]]                               days, start, end
    [[brands]]                                         name, sector, country, handles, aliases,
                                                       profile, hours
    [sandbox]                                          seed, [sandbox.profiles.<name>] ...

This module holds the models; its parts live beside it: loading and the wording of every problem
in :mod:`mystery.study.load` (with :mod:`mystery.study.problems`), days and hours in
:mod:`mystery.hours`, the brands CSV in :mod:`mystery.study.brandscsv`, the checks that span
sections in :mod:`mystery.study.checks`. Of them it imports only :mod:`mystery.hours` (for the
windows it validates), so the others can build on the model.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import date, time, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from mystery.credentials import account_suffix
from mystery.durations import parse_duration
from mystery.hours import Window, holiday_dates, parse_hours
from mystery.words import AUTOMATED_CHANNELS, CHANNELS, SendMode


def _channel_name(value: str) -> str:
    name = value.strip().lower()
    if name == "twitter":
        return "x"
    if name not in CHANNELS:
        raise ValueError(f"unknown channel {value!r}; known channels: {', '.join(CHANNELS)}")
    return name


Channel = Annotated[str, BeforeValidator(_channel_name)]


def _duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError(f"write durations with a unit, e.g. '{value}m' or '{value}h'")
    if not isinstance(value, str):
        raise ValueError("expected a duration such as '7d' or '30m'")
    try:
        return parse_duration(value)
    except OverflowError:
        raise ValueError(f"duration {value!r} is far too long; write e.g. '7d' or '2w'") from None


Duration = Annotated[timedelta, BeforeValidator(_duration)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _account_name(value: str) -> str:
    name = value.strip().lstrip("@")
    if not name:
        raise ValueError("an account name is empty; write the researcher's handle")
    if not account_suffix(name):
        raise ValueError(f"account {value!r} has no letter or digit; write the researcher's "
                         "handle")
    return name


def _hours(value: Any) -> Any:
    return parse_hours(value) if isinstance(value, str) else value


_OPERATIONAL = ("mode", "grace", "poll_every", "daily_cap", "safeguards", "budget_usd")
"""Channel keys that pace and guard the runner without changing what is measured."""

DEFAULT_DAILY_CAP = 25
"""Posts per account per 24 hours on a real platform when the study names no cap."""


class ChannelConfig(_Model):
    """How one channel is reached: the researcher's account(s), the endpoint, the sending mode.

    ``account = "me"`` names the one account probes are sent from; ``accounts = ["a", "b"]``
    several, among which the plan deals the probes (:mod:`mystery.study.plan`). Exactly one of
    the two is given; :attr:`account_names` is what the rest of mystery reads. Why two keys
    rather than one list: every study written before teams says ``account``, and its store is
    pinned to a digest that must not change (:attr:`Study.digest`)."""

    account: str | None = Field(default=None, min_length=1)
    accounts: list[str] | None = Field(default=None, min_length=1, max_length=100)
    endpoint: str = "sandbox"
    mode: SendMode | None = None
    poll_every: Duration = timedelta(minutes=5)
    # ``manual``: how long after a probe falls due the researcher has to post it by hand
    # before it is marked missed and rescheduled.
    grace: Duration = timedelta(hours=2)
    # Posts per account in any 24 hours; None = DEFAULT_DAILY_CAP where the safeguards apply,
    # else unlimited. A runtime safeguard, not a plan rule.
    daily_cap: int | None = Field(default=None, ge=1, le=1000)
    # Runtime safeguards (one open probe per brand, min_gap between actual sends, the daily
    # cap); None = on for a real platform, off in the sandbox (whose demo runs unthrottled).
    safeguards: bool | None = None
    # X only: count a brand's direct messages ("we've sent you a DM") as replies.
    read_dms: bool = False
    # X only: stop paid reads once the study's estimated spend reaches this many US dollars.
    budget_usd: float | None = Field(default=None, gt=0)

    @field_validator("account")
    @classmethod
    def _account(cls, value: str | None) -> str | None:
        return None if value is None else _account_name(value)

    @field_validator("accounts")
    @classmethod
    def _accounts(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        names = [_account_name(v) for v in value]
        seen: dict[str, str] = {}
        for name in names:
            other = seen.setdefault(account_suffix(name), name)
            if other == name and names.count(name) > 1:
                raise ValueError(f"account {name!r} is listed twice; list each account once")
            if other != name:
                raise ValueError(
                    f"accounts {other!r} and {name!r} would share one set of credentials "
                    f"(both are {account_suffix(name)} to 'mystery auth'); rename one"
                )
        return names

    @model_validator(mode="after")
    def _one_way(self) -> ChannelConfig:
        if self.account is None and self.accounts is None:
            raise ValueError(
                'name the researcher\'s account: account = "your_handle" (or accounts = '
                '["shopper_a", "shopper_b"] for several)'
            )
        if self.account is not None and self.accounts is not None:
            raise ValueError(
                "give either account or accounts, not both: accounts = [...] lists every "
                "account, the one in account too"
            )
        return self

    @property
    def account_names(self) -> tuple[str, ...]:
        """The accounts probes are sent from, in the study file's order."""
        if self.accounts is not None:
            return tuple(self.accounts)
        assert self.account is not None  # _one_way
        return (self.account,)

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        if value != "sandbox" and not re.match(r"^(https?|imaps?)://", value):
            raise ValueError(
                f"endpoint {value!r} is neither 'sandbox' nor an http(s):// URL (or, for "
                "email, an imap(s):// URL); write endpoint = \"sandbox\" for the built-in "
                "emulator"
            )
        return value.rstrip("/")

    @property
    def is_sandbox(self) -> bool:
        return self.endpoint == "sandbox"

    @property
    def send_mode(self) -> SendMode:
        """The sandbox has no posting policy, so it defaults to ``auto``; a real X, Mastodon or
        Bluesky to ``manual`` (uninvited automated mentions break their rules). Email (an
        ``imap(s)://`` endpoint) to ``auto``: mail to a support address from one's own
        mailbox breaks no rule, and manual mode cannot work for it (the runner must set the
        headers replies are matched by)."""
        if self.mode is not None:
            return self.mode
        return "auto" if self.is_sandbox or self.endpoint.startswith("imap") else "manual"

    @property
    def guarded(self) -> bool:
        """Whether the runtime safeguards apply (see ``safeguards``)."""
        return (not self.is_sandbox) if self.safeguards is None else self.safeguards

    @property
    def posts_per_day(self) -> int | None:
        """The effective daily cap: what the study says, else a cautious default where the
        safeguards apply (X flags bursts of mentions as spam), else none."""
        if self.daily_cap is not None:
            return self.daily_cap
        return DEFAULT_DAILY_CAP if self.guarded else None


class Question(_Model):
    id: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    text: str = Field(min_length=1)

    @field_validator("text")
    @classmethod
    def _template(cls, value: str) -> str:
        try:
            value.format(brand="Brand")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(
                f"text uses an unknown placeholder {exc}; the only placeholder is {{brand}}"
            ) from None
        return value

    def render(self, brand: str) -> str:
        return self.text.format(brand=brand)


class Brand(_Model):
    name: str = Field(min_length=1)
    sector: str = ""
    country: str = ""
    handles: dict[Channel, str] = Field(default_factory=dict)
    aliases: dict[Channel, list[str]] = Field(default_factory=dict)
    profile: str | None = None
    # Customer-service hours, local to the study's time zone; empty = the study default
    # (mystery.analysis.business.DEFAULT_WINDOWS). Only business-hours figures use them.
    hours: Annotated[list[Window], BeforeValidator(_hours)] = Field(default_factory=list)
    # The brand's own public-holiday calendar (a ``holidays`` code such as "GB-SCT"), instead
    # of the study's: a Scottish brand in a study of English ones. None: the study's.
    holidays: str | None = None

    @field_validator("holidays")
    @classmethod
    def _holidays(cls, value: str | None) -> str | None:
        if value is not None:
            value = value.strip() or None
        if value is not None:
            holiday_dates(value, 2000, 2000)  # ValueError names the valid form
        return value

    @field_validator("name", "sector", "country")
    @classmethod
    def _strip(cls, value: str) -> str:
        if any(not ch.isprintable() for ch in value.strip()):
            raise ValueError(
                "contains a line break or control character; write it on one line (in a CSV, "
                "look for an unclosed quote)"
            )
        return value.strip()

    @field_validator("handles")
    @classmethod
    def _handles(cls, value: dict[str, str]) -> dict[str, str]:
        return {k: v.strip().lstrip("@") for k, v in value.items() if v.strip()}

    @field_validator("aliases")
    @classmethod
    def _aliases(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        return {k: [a.strip().lstrip("@") for a in v if a.strip()] for k, v in value.items()}


class Schedule(_Model):
    start: date
    end: date
    probes_per_brand: int = Field(default=3, ge=1, le=1000)
    min_gap: Duration = timedelta(days=1)
    seed: int = 0
    windows: list[Window] = Field(
        default_factory=lambda: [Window(days="mon-fri", start=time(9), end=time(17))],
        min_length=1,
    )

    @model_validator(mode="after")
    def _ordered(self) -> Schedule:
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}; swap them")
        return self


class Profile(_Model):
    """How a simulated brand in the sandbox answers. Latencies are log-normal around a median."""

    answer_rate: float = Field(default=1.0, ge=0, le=1)
    ack_median: Duration = timedelta(hours=1)
    ack_spread: float = Field(default=0.6, ge=0, le=3)
    resolve_after: Duration = timedelta(0)
    holding_share: float = Field(default=0.0, ge=0, le=1)
    alias_share: float = Field(default=0.0, ge=0, le=1)
    # X only: share of answered probes acknowledged publicly ("we've sent you a DM") and then
    # resolved by a direct message, after ``resolve_after``.
    dm_share: float = Field(default=0.0, ge=0, le=1)
    hours: list[Window] = Field(default_factory=list)


class SandboxConfig(_Model):
    seed: int = 0
    profiles: dict[str, Profile] = Field(default_factory=dict)


class Study(_Model):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    series: str = Field(default="", pattern=r"^([a-z0-9][a-z0-9_-]*)?$")
    year: int = Field(ge=2000, le=2100)
    title: str = ""
    timezone: str = "UTC"
    # Public holidays (a calendar of the holidays package, e.g. "GB-ENG"): no probe is planned
    # on one, and business hours are closed on them.
    holidays: str | None = None
    cutoff: Duration = timedelta(days=7)
    synthetic: bool = False
    brands_csv: str | None = None
    channels: dict[Channel, ChannelConfig] = Field(min_length=1)
    questions: list[Question] = Field(min_length=1)
    schedule: Schedule
    brands: list[Brand] = Field(default_factory=list)
    sandbox: SandboxConfig = Field(default_factory=SandboxConfig)

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r}; use an IANA name such as 'Europe/London'"
            ) from None
        return value

    @field_validator("holidays")
    @classmethod
    def _holidays(cls, value: str | None) -> str | None:
        if value is not None:
            holiday_dates(value, 2000, 2000)  # ValueError names the valid form
        return value

    def holiday_dates(self, code: str | None = None) -> frozenset[date]:
        """The public holidays of calendar ``code`` (default: the study's) over the schedule
        and the cutoff after it."""
        code = code or self.holidays
        if code is None:
            return frozenset()
        last = self.schedule.end + self.cutoff + timedelta(days=1)
        return holiday_dates(code, self.schedule.start.year, last.year)

    def calendar_of(self, brand: Brand) -> str | None:
        """The holiday calendar a brand keeps: its own, else the study's."""
        return brand.holidays or self.holidays

    @field_validator("cutoff")
    @classmethod
    def _cutoff(cls, value: timedelta) -> timedelta:
        if value < timedelta(minutes=1):
            raise ValueError("cutoff must be at least 1 minute, e.g. '7d'")
        return value

    @model_validator(mode="after")
    def _defaults(self) -> Study:
        if not self.series:
            object.__setattr__(self, "series", self.name)
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def sandbox_channels(self) -> list[str]:
        """Automated channels served by the sandbox (hand-logged channels have no endpoint)."""
        return [n for n, c in self.channels.items() if n in AUTOMATED_CHANNELS and c.is_sandbox]

    @property
    def digest(self) -> str:
        """What a store is pinned to: the study as it shapes the plan and the measurement.

        Left out, so that they can change while a study runs: how the runner paces and guards
        itself (``mode``, ``grace``, ``poll_every``, ``daily_cap``, ``safeguards``,
        ``budget_usd``: raising a spent budget must not orphan the store) and the brands'
        service ``hours`` (analysis only). Defaults are left out too, so that a key added in a
        later version of mystery does not orphan a store made before it."""
        data = self.model_dump(mode="json", exclude_defaults=True)
        for channel in data.get("channels", {}).values():
            for key in _OPERATIONAL:
                channel.pop(key, None)
            if len(channel.get("accounts", ())) == 1:  # the same study as account = "..."
                channel["account"] = channel.pop("accounts")[0]
        for brand in data.get("brands", []):
            brand.pop("hours", None)
        text = json.dumps(data, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(text.encode()).hexdigest()

    def question(self, question_id: str) -> Question:
        return next(q for q in self.questions if q.id == question_id)

    def brand(self, name: str) -> Brand:
        return next(b for b in self.brands if b.name == name)
