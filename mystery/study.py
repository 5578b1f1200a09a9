"""The study file: one wave of measurement, as a versioned TOML file (plus an optional brands CSV).

Why pydantic with ``extra="forbid"``: a typo such as ``cuttoff`` must be an error naming the key,
never a silent default that changes what a study measures. Every problem is collected and
reported at once as ``file: key.path: message (fix)`` lines by :func:`load_study`, which raises
:class:`~mystery.errors.StudyError` (the CLI prints it and exits 1).

The shape, with the keys a researcher writes::

    name, series, year, title, timezone, cutoff, synthetic, brands_csv
    [channels.<x|mastodon|bluesky|email|phone|...>]  account, endpoint, mode, poll_every
    [[questions]]                                      id, text   ("{brand}" is replaced)
    [schedule]                                         start, end, probes_per_brand, min_gap, seed
    [[schedule.windows]]                               days, start, end
    [[brands]]                                         name, sector, country, handles, aliases,
                                                       profile, hours
    [sandbox]                                          seed, [sandbox.profiles.<name>] ...

This module holds the models and :func:`load_study`; its parts live beside it: days and hours
in :mod:`mystery.windows`, the brands CSV in :mod:`mystery.brandscsv`, the checks that span
sections in :mod:`mystery.studychecks`, and the locating and wording of problems in
:mod:`mystery.studyerrors`.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from datetime import date, time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from mystery.durations import parse_duration
from mystery.errors import Problem, StudyError
from mystery.studyerrors import error_hint, key_path, line_of

# Re-exported: callers import these from mystery.study, where they were first defined.
from mystery.windows import Window as Window
from mystery.windows import format_hours as format_hours
from mystery.windows import parse_hours as parse_hours

AUTOMATED_CHANNELS = ("x", "mastodon", "bluesky", "email")
HAND_LOGGED_CHANNELS = ("phone", "chat", "facebook", "instagram", "linkedin", "whatsapp", "web")
CHANNELS = AUTOMATED_CHANNELS + HAND_LOGGED_CHANNELS


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


def _hours(value: Any) -> Any:
    return parse_hours(value) if isinstance(value, str) else value


_OPERATIONAL = ("mode", "grace", "poll_every", "daily_cap", "safeguards", "budget_usd")
"""Channel keys that pace and guard the runner without changing what is measured."""

DEFAULT_DAILY_CAP = 25
"""Posts per account per 24 hours on a real platform when the study names no cap."""


class ChannelConfig(_Model):
    """How one channel is reached: the researcher's account, the endpoint, the sending mode."""

    account: str = Field(min_length=1)
    endpoint: str = "sandbox"
    mode: Literal["auto", "confirm", "manual"] | None = None
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
    def _account(cls, value: str) -> str:
        return value.strip().lstrip("@")

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
    def send_mode(self) -> str:
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
        for brand in data.get("brands", []):
            brand.pop("hours", None)
        text = json.dumps(data, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(text.encode()).hexdigest()

    def question(self, question_id: str) -> Question:
        return next(q for q in self.questions if q.id == question_id)

    def brand(self, name: str) -> Brand:
        return next(b for b in self.brands if b.name == name)


class LoadedStudy(BaseModel):
    """A validated study with where it came from; the hash pins the store to this file."""

    model_config = ConfigDict(frozen=True)

    study: Study
    path: Path
    sha256: str

    @property
    def default_db(self) -> Path:
        return self.path.with_suffix(".db")


# ---------------------------------------------------------------------------------------------
# Loading: turn every problem into a Problem with file, key path and a fix hint.


def load_study(path: str | Path) -> LoadedStudy:
    """Read and validate a study file; raise StudyError listing every problem found."""
    # Imported here, not above: both import this module, as does mystery.plan, which the
    # checks end with.
    from mystery.brandscsv import read_brands_csv
    from mystery.studychecks import cross_checks

    path = Path(path)
    file = str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise StudyError([Problem(file, "", "no such file; check the path")]) from None
    except IsADirectoryError:
        raise StudyError([Problem(file, "", "is a folder; name the .toml study file")]) from None
    except OSError as exc:
        raise StudyError([Problem(file, "", f"cannot read it: {exc.strerror}")]) from None
    if raw.startswith(b"SQLite format 3\x00"):
        raise StudyError([Problem(file, "", "is a store (SQLite), not a study file; name the "
                                  ".toml study file (its store sits beside it)")])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise StudyError([Problem(file, "", "not UTF-8 text; save it as UTF-8")]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise StudyError([Problem(file, "", f"not valid TOML: {exc}")]) from None
    if not data:
        raise StudyError(
            [Problem(file, "", "the file is empty; start from studies/demo.toml")]
        )

    problems: list[Problem] = []
    csv_rows: dict[int, str] = {}
    brands_csv = data.get("brands_csv")
    if isinstance(brands_csv, str):
        csv_path = path.parent / brands_csv
        rows = read_brands_csv(csv_path, problems)
        offset = len(data.get("brands", []))
        for i, row in enumerate(rows):
            csv_rows[offset + i] = f"{csv_path.name} row {row.pop('_row')}"
        data = {**data, "brands": list(data.get("brands", [])) + rows}

    try:
        study = Study.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            loc = tuple(error["loc"])
            where = key_path(loc, data)
            if loc and loc[0] == "brands" and len(loc) > 1 and isinstance(loc[1], int):
                csv_row = csv_rows.get(loc[1])
                if csv_row:
                    where = csv_row + (("." + key_path(loc[2:], data)) if loc[2:] else "")
            value = error.get("input")
            hint = error_hint(error)
            quiet = error["type"] == "missing" or isinstance(value, dict | list)
            shown = "" if quiet or repr(value) in hint else f" (got {value!r})"
            problems.append(Problem(file, line_of(text, loc) + where, hint + shown))
        raise StudyError(problems) from None
    csv_failed = bool(problems)  # the brands CSV could not be read: "no brands" says nothing new
    for problem in cross_checks(study, file, csv_rows):
        if csv_failed and problem.where == "brands":
            continue
        if problem.file == file and re.fullmatch(r"[\w.\[\]-]+", problem.where):  # a key path
            loc = tuple(
                int(part[1:-1]) if part.startswith("[") else part
                for part in re.findall(r"\[\d+\]|[^.\[\]]+", problem.where)
            )
            problem = Problem(file, line_of(text, loc) + problem.where, problem.message)
        problems.append(problem)
    if problems:
        raise StudyError(problems)
    return LoadedStudy(study=study, path=path, sha256=hashlib.sha256(raw).hexdigest())
