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
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import tomllib
from collections.abc import Sequence
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
from pydantic_core import ErrorDetails

from mystery.durations import format_duration, parse_duration
from mystery.errors import Problem, StudyError

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

_DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

X_USERNAME = re.compile(r"^[A-Za-z0-9_]{1,15}$")
X_MAX_WEIGHT = 280


def x_username_problem(handle: str, max_length: int = 15) -> str | None:
    """Why ``handle`` cannot be an X username (``[A-Za-z0-9_]{1,15}``), with the fix; or None.

    Checked when the study is loaded because X would otherwise refuse (or silently mis-address)
    the probe days into the study."""
    if re.fullmatch(rf"[A-Za-z0-9_]{{1,{max_length}}}", handle):
        return None
    url = re.match(r"(?:https?://)?(?:www\.)?(?:x|twitter)\.com/([A-Za-z0-9_]+)", handle)
    if url:
        return f"{handle!r} is a link; write the username alone, e.g. {url.group(1)!r}"
    bad = sorted({ch for ch in handle if not re.fullmatch(r"[A-Za-z0-9_]", ch)})
    if bad:
        shown = ", ".join("a space" if ch == " " else repr(ch) for ch in bad)
        return (
            f"{handle!r} is not an X username: it contains {shown}; X usernames use only "
            "letters A-Z, digits and '_' (copy it from the profile's x.com/<username> link)"
        )
    return (
        f"{handle!r} has {len(handle)} characters; X usernames have at most {max_length} "
        "(copy it from the profile's x.com/<username> link)"
    )


def x_weighted_length(text: str) -> int:
    """Length as X counts it: most Latin-script characters 1, CJK, emoji and the rest 2.

    The ranges are twitter-text's (config v3); emoji sequences are over-counted slightly,
    which errs on the side of a question that fits."""
    total = 0
    for ch in text:
        code = ord(ch)
        light = (code <= 4351 or 8192 <= code <= 8205 or 8208 <= code <= 8223
                 or 8242 <= code <= 8247 or 0xFE00 <= code <= 0xFE0F)
        total += 1 if light else 2
    return total


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


def parse_days(spec: str) -> frozenset[int]:
    """``"mon-fri"``, ``"sat,sun"``, ``"daily"`` → weekday numbers (Monday = 0)."""
    spec = spec.strip().lower()
    if spec in ("daily", "all", "every day"):
        return frozenset(range(7))
    days: set[int] = set()
    for part in spec.split(","):
        part = part.strip()
        ends = [p.strip()[:3] for p in part.split("-")]
        if len(ends) > 2 or any(e not in _DAY_NAMES for e in ends):
            raise ValueError(
                f"cannot read days {spec!r}; write e.g. 'mon-fri', 'sat,sun' or 'daily'"
            )
        first = _DAY_NAMES.index(ends[0])
        last = _DAY_NAMES.index(ends[-1])
        day = first
        while True:
            days.add(day)
            if day == last:
                break
            day = (day + 1) % 7
    return frozenset(days)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Window(_Model):
    """A recurring local-time interval, e.g. weekdays 09:00–17:00 in the study timezone."""

    days: str = "mon-fri"
    start: time
    end: time

    @field_validator("days")
    @classmethod
    def _days(cls, value: str) -> str:
        parse_days(value)
        return value

    @field_validator("start", "end", mode="before")
    @classmethod
    def _clock_time(cls, value: Any) -> Any:
        if isinstance(value, str) and re.fullmatch(r"\d{1,2}:\d{2}", value.strip()):
            hours, minutes = value.strip().split(":")
            if int(hours) == 24 and int(minutes) == 0:
                return time(23, 59, 59)
            return time(int(hours), int(minutes))
        return value

    @model_validator(mode="after")
    def _ordered(self) -> Window:
        if self.end <= self.start:
            raise ValueError(
                f"window ends ({self.end:%H:%M}) before it starts ({self.start:%H:%M}); "
                "windows cannot cross midnight, split it into two"
            )
        return self

    @property
    def weekdays(self) -> frozenset[int]:
        return parse_days(self.days)


HOURS_EXAMPLE = "mon-fri 09:00-17:00; sat 10:00-16:00"
_HOURS_ENTRY = re.compile(
    r"(?P<days>.*?)\s*:?\s*(?P<start>\d{1,2}:\d{2})\s*[-–]\s*(?P<end>\d{1,2}:\d{2})")


def parse_hours(spec: str) -> list[Window]:
    """Opening hours written on one line, as in the brands CSV's ``hours`` column and in
    ``study.json``: entries separated by ``;``, each days then ``start-end`` in local time
    (``HOURS_EXAMPLE``). Empty means none declared. ValueError names the entry and the fix."""
    windows: list[Window] = []
    for entry in filter(None, (part.strip() for part in spec.split(";"))):
        match = _HOURS_ENTRY.fullmatch(entry)
        if match is None or not match["days"]:
            raise ValueError(f"cannot read {entry!r}; write days then opening times, separated "
                             f"by ';', e.g. '{HOURS_EXAMPLE}'")
        for clock in (match["start"], match["end"]):
            hour, minute = map(int, clock.split(":"))
            if minute > 59 or hour > 24 or (hour == 24 and minute):
                raise ValueError(f"{entry!r}: {clock} is not a time of day; write HH:MM from "
                                 "00:00 to 24:00")
        try:
            windows.append(Window.model_validate(match.groupdict()))
        except ValidationError as exc:
            raise ValueError(f"{entry!r}: " + str(exc.errors()[0]["msg"]).removeprefix(
                "Value error, ")) from None
    return windows


def format_hours(windows: Sequence[Window]) -> str:
    """The one-line form :func:`parse_hours` reads back (``24:00`` for an end at midnight)."""
    def clock(t: time) -> str:
        return "24:00" if t == time(23, 59, 59) else f"{t:%H:%M}"

    return "; ".join(f"{w.days} {clock(w.start)}-{clock(w.end)}" for w in windows)


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
        """The sandbox has no posting policy, so it defaults to ``auto``; real X to ``manual``."""
        if self.mode is not None:
            return self.mode
        return "auto" if self.is_sandbox else "manual"

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


def _key_path(loc: tuple[int | str, ...], data: dict[str, Any]) -> str:
    """``('brands', 3, 'handles', 'x')`` → ``brands[3].handles.x`` (0-based like TOML arrays)."""
    out = ""
    for part in loc:
        if part == "[key]":  # pydantic's marker for an invalid dict key: the key is named already
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _hint(error: ErrorDetails) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown key; check its spelling against the study file reference in README.md"
    if kind == "missing":
        return "required key is missing; add it"
    if kind == "string_too_short":
        return "is empty; give it a value"
    if kind == "literal_error" and error["loc"] and error["loc"][-1] == "mode":
        return "mode must be one of auto, confirm, manual"
    msg = str(error["msg"])
    return msg.removeprefix("Value error, ")


def _read_brands_csv(path: Path, problems: list[Problem]) -> list[dict[str, Any]]:
    """Brands CSV: name, sector, country, one column per channel handle, ``<channel>_aliases``
    (separated by ``;``), profile, hours (``parse_hours``; empty = the study default). BOM and
    CRLF are accepted; rows are numbered as a spreadsheet shows them (header = row 1)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        problems.append(Problem(str(path), "", "brands CSV not found; check brands_csv"))
        return []
    except IsADirectoryError:
        problems.append(Problem(str(path), "", "is a folder; brands_csv must name a .csv file"))
        return []
    except UnicodeDecodeError:
        problems.append(Problem(str(path), "", "not UTF-8; save the CSV as UTF-8"))
        return []
    except OSError as exc:
        problems.append(Problem(str(path), "", f"cannot read it: {exc.strerror}"))
        return []
    if not text.strip():
        problems.append(Problem(str(path), "", "the brands CSV is empty; write a header row "
                                "(e.g. name,sector,country,x,profile) and one row per brand"))
        return []
    # newline="" keeps a quoted line break inside its cell, where the checks below can see it.
    reader = csv.DictReader(io.StringIO(text, newline=""))
    known = {"name", "sector", "country", "profile", "hours"}
    known |= set(CHANNELS) | {f"{c}_aliases" for c in CHANNELS}
    fields = reader.fieldnames or []
    if "name" not in fields:
        hint = "add one"
        if len(fields) == 1 and ";" in fields[0]:
            hint = "the columns are separated by ';': save the CSV with ',' between columns"
        elif len(fields) == 1 and "\t" in fields[0]:
            hint = "the columns are separated by tabs: save the CSV with ',' between columns"
        problems.append(Problem(str(path), "row 1", f"header has no 'name' column; {hint}"))
        return []
    repeated = sorted({f for f in fields if fields.count(f) > 1})
    if repeated:
        problems.append(Problem(str(path), "row 1", f"column(s) {', '.join(repeated)} appear "
                                "more than once; keep one of each"))
        return []
    unknown = [f for f in fields if f not in known]
    if unknown:
        problems.append(
            Problem(
                str(path), "row 1", f"unknown column(s) {', '.join(unknown)}; known: "
                "name, sector, country, profile, hours, a channel name, <channel>_aliases",
            )
        )
        return []
    rows: list[dict[str, Any]] = []
    for number, row in enumerate(reader, start=2):
        if None in row:
            problems.append(Problem(str(path), f"row {number}", "more cells than header columns"))
            continue
        if any("\n" in cell or "\r" in cell for cell in row.values() if cell):
            problems.append(Problem(
                str(path), f"row {number}", "a cell spans several lines, which usually means "
                "an unclosed quote (\"); close the quote or remove it",
            ))
            continue
        brand: dict[str, Any] = {"name": row["name"] or ""}
        for key in ("sector", "country"):
            if row.get(key):
                brand[key] = row[key]
        if row.get("profile"):
            brand["profile"] = row["profile"].strip()
        if (row.get("hours") or "").strip():
            brand["hours"] = row["hours"]  # a string: Brand.hours parses it, naming the row
        brand["handles"] = {c: row[c] for c in CHANNELS if row.get(c)}
        brand["aliases"] = {
            c: row[f"{c}_aliases"].split(";") for c in CHANNELS if row.get(f"{c}_aliases")
        }
        brand["_row"] = number
        rows.append(brand)
    if not rows and not problems:
        problems.append(Problem(str(path), "row 2", "no brands below the header; add one row "
                                "per brand"))
    return rows


def _x_problems(study: Study, file: str, rows: dict[int, str]) -> list[Problem]:
    """Handles X would refuse, a handle two brands share, questions too long to post."""
    problems: list[Problem] = []
    config = study.channels["x"]
    # The sandbox takes researcher accounts of up to 50 characters (sandbox/spec.py): the demo
    # study's is longer than X allows. Brands' handles follow X's rules everywhere.
    limit = 50 if config.is_sandbox else 15
    if why := x_username_problem(config.account, limit):
        problems.append(Problem(file, "channels.x.account", why))
    owners: dict[str, str] = {}
    for i, brand in enumerate(study.brands):
        where = rows.get(i, f"brands[{i}]")
        handles = [(f"{where}.handles.x", brand.handles["x"])] if "x" in brand.handles else []
        handles += [(f"{where}.aliases.x[{j}]", alias)
                    for j, alias in enumerate(brand.aliases.get("x", []))]
        for path, handle in handles:
            if why := x_username_problem(handle):
                problems.append(Problem(file, path, why))
                continue
            owner = owners.setdefault(handle.casefold(), brand.name)
            if owner != brand.name:
                problems.append(Problem(
                    file, path, f"@{handle} is also the account of brand {owner!r}; give each "
                    "brand its own handles (replies from a shared account cannot be told apart)",
                ))
    for i, question in enumerate(study.questions):
        posted = [(x_weighted_length(f"@{b.handles['x']} {question.render(b.name)}"), b.name)
                  for b in study.brands if "x" in b.handles]
        if posted and max(posted)[0] > X_MAX_WEIGHT:
            length, name = max(posted)
            problems.append(Problem(
                file, f"questions[{i}].text", f"is {length} characters as posted to {name!r} "
                f"(with '@handle ' in front), but X allows {X_MAX_WEIGHT}; shorten it",
            ))
    return problems


# "@name", "@user@domain", "@brand.bsky.social", "@{brand}"; not the "@" of an email address.
_MENTION = re.compile(r"(?<![\w@])@(?:\{brand\}|\w(?:[\w.-]*\w)?(?:@\w(?:[\w.-]*\w)?)?)")


def _mention_problems(study: Study, file: str) -> list[Problem]:
    """Exactly one mention per probe, the brand's, which ``Outgoing.compose`` puts in front.

    A question that mentions anyone itself makes a post with two mentions (or the brand's
    twice): read as spam on X and Mastodon, auto-reported by some instances' anti-spam tooling,
    and a mention of a third account drags it into the conversation (research/platforms.md §7).
    """
    social = [c for c in ("x", "mastodon", "bluesky") if c in study.channels]
    if not social:
        return []
    problems: list[Problem] = []
    for i, question in enumerate(study.questions):
        found = _MENTION.search(question.text)
        if found is None:
            continue
        fix = ("write {brand} without '@'" if found.group() == "@{brand}"
               else f"remove {found.group()!r} (write {{brand}} to name the brand)")
        problems.append(Problem(
            file, f"questions[{i}].text",
            f"contains the mention {found.group()!r}, but a probe on {', '.join(social)} may "
            "mention only the brand it asks, and mystery adds that mention itself "
            f"('@handle ' in front); a second mention reads as spam: {fix}",
        ))
    return problems


def _cross_checks(study: Study, file: str, rows: dict[int, str]) -> list[Problem]:
    """Checks that span sections, which a single field validator cannot see."""
    problems: list[Problem] = []
    if not study.brands:
        problems.append(Problem(file, "brands", "no brands; add [[brands]] or brands_csv"))
    seen: dict[str, int] = {}
    for i, brand in enumerate(study.brands):
        where = rows.get(i, f"brands[{i}]")
        key = brand.name.casefold()
        if key in seen:
            problems.append(
                Problem(file, where, f"duplicate brand {brand.name!r}; give each brand once")
            )
        seen[key] = i
        # A brand is asked on the automated channels it has a handle on (a brand may be on X
        # only); it must be reachable on at least one channel of the study.
        automated = [c for c in study.channels if c in AUTOMATED_CHANNELS]
        manual = [c for c in study.channels if c not in AUTOMATED_CHANNELS]
        if automated and not manual and not any(c in brand.handles for c in automated):
            problems.append(
                Problem(
                    file, f"{where}.handles",
                    f"brand {brand.name!r} has no handle on any of the study's channels "
                    f"({', '.join(automated)}); add one, e.g. handles = {{ {automated[0]} = "
                    '"BrandHandle" }',
                )
            )
        for channel in brand.handles:
            if channel not in study.channels:
                problems.append(
                    Problem(
                        file, f"{where}.handles.{channel}",
                        f"channel {channel!r} is not configured; add [channels.{channel}] "
                        "or remove the handle",
                    )
                )
        if brand.profile is not None and brand.profile not in study.sandbox.profiles:
            known = ", ".join(sorted(study.sandbox.profiles)) or "none defined"
            problems.append(
                Problem(
                    file, f"{where}.profile",
                    f"unknown profile {brand.profile!r}; define [sandbox.profiles."
                    f"{brand.profile}] (known: {known})",
                )
            )
    if study.sandbox_channels:
        for i, brand in enumerate(study.brands):
            if brand.profile is None:
                problems.append(
                    Problem(
                        file, f"{rows.get(i, f'brands[{i}]')}.profile",
                        f"brand {brand.name!r} has no profile but the study runs in the "
                        "sandbox, which needs one to simulate its answers",
                    )
                )
                break
    if "x" in study.channels:
        problems.extend(_x_problems(study, file, rows))
    ids = [q.id for q in study.questions]
    for i, qid in enumerate(ids):
        if ids.index(qid) != i:
            problems.append(
                Problem(file, f"questions[{i}].id", f"duplicate question id {qid!r}")
            )
    if "x" in study.channels:
        for i, q in enumerate(study.questions):
            if re.search(r"https?://|www\.", q.text, re.IGNORECASE):
                problems.append(
                    Problem(
                        file, f"questions[{i}].text",
                        "contains a URL: on X a post with a URL costs 13x more and reads "
                        "as spam; remove it",
                    )
                )
    problems.extend(_mention_problems(study, file))
    schedule = study.schedule
    if schedule.start.year != study.year and schedule.end.year != study.year:
        problems.append(
            Problem(
                file, "year",
                f"year {study.year} disagrees with the schedule ({schedule.start} to "
                f"{schedule.end}); correct one of them",
            )
        )
    days = {(schedule.start + timedelta(d)).weekday()
            for d in range(min(7, (schedule.end - schedule.start).days + 1))}
    if not any(days & w.weekdays for w in schedule.windows):
        problems.append(
            Problem(
                file, "schedule.windows",
                f"no send window falls on any day from {schedule.start} to {schedule.end}; "
                "widen the dates or the windows' days",
            )
        )
    span = timedelta(days=(schedule.end - schedule.start).days + 1)
    needed = schedule.min_gap * (schedule.probes_per_brand - 1)
    if needed >= span:
        problems.append(
            Problem(
                file, "schedule.min_gap",
                f"{schedule.probes_per_brand} probes per brand "
                f"{format_duration(schedule.min_gap.total_seconds())} apart need "
                f"more than the {span.days} day(s) from start to end; lengthen the schedule, "
                "shorten min_gap or lower probes_per_brand",
            )
        )
    for name, config in study.channels.items():
        if name == "email" and config.mode == "manual":
            problems.append(
                Problem(file, "channels.email.mode",
                        "email has no manual mode: the runner must send each message itself to "
                        "give it the Message-ID and reply token that replies are matched by; "
                        'use mode = "auto" or "confirm"')
            )
        for key, value in (("read_dms", config.read_dms), ("budget_usd", config.budget_usd)):
            if name != "x" and value:
                problems.append(
                    Problem(file, f"channels.{name}.{key}",
                            f"{key} applies to X only (it is about X's paid API); remove it "
                            f"from [channels.{name}]")
                )
        if name in AUTOMATED_CHANNELS and config.poll_every >= study.cutoff:
            problems.append(
                Problem(
                    file, f"channels.{name}.poll_every",
                    f"polls every {format_duration(config.poll_every.total_seconds())} but the "
                    f"cutoff is {format_duration(study.cutoff.total_seconds())}; "
                    "poll more often than the cutoff",
                )
            )
    if not problems:
        # Last, on an otherwise sound study: can the schedule hold every brand's probes? (The
        # span check above catches the obvious cases; this one knows the windows and DST.)
        from mystery.plan import schedule_problems  # plan imports this module

        problems.extend(schedule_problems(study, file))
    return problems


_TABLE = re.compile(r"^\[\[?\s*([^\]]+?)\s*\]\]?")
_KEY = re.compile(r"^([A-Za-z0-9_.\"' -]+?)\s*=")


def _toml_path(dotted: str) -> tuple[str, ...]:
    return tuple(part.strip().strip("\"'") for part in dotted.split("."))


def _line_of(text: str, loc: tuple[int | str, ...]) -> str:
    """The line that sets the deepest part of ``loc`` (``line 12: ``), so an editor can jump
    there; empty when the key is absent from the file (missing, or from the brands CSV).

    Follows ``[table]`` and ``[[array]]`` headers, counting array entries, so
    ``brands[1].name`` points at the second brand's ``name``, not at the study's."""
    target = tuple(part for part in loc if part != "[key]")
    table: tuple[int | str, ...] = ()
    entries: dict[tuple[str, ...], int] = {}
    best, best_depth = "", 0
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if header := _TABLE.match(stripped):
            names = _toml_path(header.group(1))
            if stripped.startswith("[["):
                entries[names] = entries.get(names, -1) + 1
                table = (*names, entries[names])
            else:
                table = names
            path = table
        elif key := _KEY.match(stripped):
            path = (*table, *_toml_path(key.group(1)))
        else:
            continue
        if len(path) > best_depth and target[: len(path)] == path:
            best, best_depth = f"line {number}: ", len(path)
        elif len(target) > best_depth and path[:-1] == target and isinstance(path[-1], int):
            # The target is an array of tables: its first entry stands for the whole array.
            best, best_depth = f"line {number}: ", len(target)
    return best


def load_study(path: str | Path) -> LoadedStudy:
    """Read and validate a study file; raise StudyError listing every problem found."""
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
        rows = _read_brands_csv(csv_path, problems)
        offset = len(data.get("brands", []))
        for i, row in enumerate(rows):
            csv_rows[offset + i] = f"{csv_path.name} row {row.pop('_row')}"
        data = {**data, "brands": list(data.get("brands", [])) + rows}

    try:
        study = Study.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            loc = tuple(error["loc"])
            where = _key_path(loc, data)
            if loc and loc[0] == "brands" and len(loc) > 1 and isinstance(loc[1], int):
                csv_row = csv_rows.get(loc[1])
                if csv_row:
                    where = csv_row + (("." + _key_path(loc[2:], data)) if loc[2:] else "")
            value = error.get("input")
            hint = _hint(error)
            quiet = error["type"] == "missing" or isinstance(value, dict | list)
            shown = "" if quiet or repr(value) in hint else f" (got {value!r})"
            problems.append(Problem(file, _line_of(text, loc) + where, hint + shown))
        raise StudyError(problems) from None
    csv_failed = bool(problems)  # the brands CSV could not be read: "no brands" says nothing new
    for problem in _cross_checks(study, file, csv_rows):
        if csv_failed and problem.where == "brands":
            continue
        if problem.file == file and re.fullmatch(r"[\w.\[\]-]+", problem.where):  # a key path
            loc = tuple(
                int(part[1:-1]) if part.startswith("[") else part
                for part in re.findall(r"\[\d+\]|[^.\[\]]+", problem.where)
            )
            problem = Problem(file, _line_of(text, loc) + problem.where, problem.message)
        problems.append(problem)
    if problems:
        raise StudyError(problems)
    return LoadedStudy(study=study, path=path, sha256=hashlib.sha256(raw).hexdigest())
