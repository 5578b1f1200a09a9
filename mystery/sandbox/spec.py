"""The body of ``PUT /_sandbox/world``: who exists in the sandbox and how its brands behave.

Why a model of its own rather than the study file: a standalone sandbox outlives runner restarts
and may be driven by anything that speaks JSON, so it needs a self-contained, JSON-friendly
description (durations in seconds) that can be compared for equality: the same body twice is a
no-op, a different body while a world exists is a conflict. :meth:`WorldSpec.from_study` builds
one from a study so the runner never assembles it by hand.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from mystery.errors import SandboxError
from mystery.study.model import Profile, Study

USERNAME = re.compile(r"^[A-Za-z0-9_]{1,50}$")
"""X usernames are ``[A-Za-z0-9_]{1,15}`` (OpenAPI ``UserName``). The sandbox allows up to 50
characters because existing study files use longer researcher accounts (the demo's
``mystery_researcher`` has 18); responses naming such an account break the contract, nothing else.
"""

MASTODON_ACCT = re.compile(r"^[A-Za-z0-9_]{1,30}(@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+)?$")
"""``user`` or ``user@domain`` (the brand's, as the study writes it: a full ``@user@domain``)."""
BLUESKY_HANDLE = re.compile(
    r"^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$"
)
"""The atproto handle syntax: a domain name such as ``brand.bsky.social``."""
SANDBOX_DOMAIN = "sandbox.test"
"""The researcher's Mastodon instance when the study names no domain for the account."""
EMULATED = ("x", "mastodon", "bluesky")
"""The channels the sandbox speaks; a world's researcher needs an account on at least one."""

EARLIEST_START = datetime(2010, 11, 5, tzinfo=UTC)
"""Snowflake ids cannot encode times before the X epoch (2010-11-04), so neither can a world."""

_DURATION_FIELDS = ("ack_median", "resolve_after")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _username(value: str) -> str:
    value = value.strip().lstrip("@")
    if not USERNAME.match(value):
        raise ValueError(f"{value!r} is not an X username (letters, digits or _, at most 15)")
    return value


def _handle(channel: str, value: str) -> str:
    """A handle checked by the rules of its channel; other channels' handles pass as given."""
    if channel == "x":
        return _username(value)
    value = value.strip().lstrip("@")
    if channel == "mastodon" and not MASTODON_ACCT.match(value):
        raise ValueError(f"{value!r} is not a Mastodon account; write user@domain")
    if channel == "bluesky" and not BLUESKY_HANDLE.match(value):
        raise ValueError(f"{value!r} is not a Bluesky handle; write e.g. brand.bsky.social")
    return value


def _domain(acct: str, default: str = SANDBOX_DOMAIN) -> str:
    """The instance a Mastodon ``user@domain`` is on (``default`` for a bare ``user``, who is
    on the sandbox's own instance), lower-case."""
    _, _, domain = acct.partition("@")
    return (domain or default).casefold()


class BrandSpec(_Model):
    """One simulated brand: its handles per channel, alias handles, and answering profile."""

    name: str = Field(min_length=1)
    handles: dict[str, str] = Field(default_factory=dict)
    aliases: dict[str, list[str]] = Field(default_factory=dict)
    profile: Profile = Field(default_factory=Profile)

    @field_validator("handles")
    @classmethod
    def _handles(cls, value: dict[str, str]) -> dict[str, str]:
        return {k: _handle(k, v) for k, v in value.items()}

    @field_validator("aliases")
    @classmethod
    def _aliases(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        """Empty lists are dropped, so ``{}`` and ``{"x": []}`` describe the same world."""
        return {k: [_handle(k, a) for a in v] for k, v in value.items() if v}

    @field_validator("profile", mode="before")
    @classmethod
    def _seconds(cls, value: Any) -> Any:
        """JSON has no durations: numbers are seconds (``Profile`` itself insists on units)."""
        if not isinstance(value, dict):
            return value
        out = dict(value)
        for key in _DURATION_FIELDS:
            raw = out.get(key)
            if isinstance(raw, int | float) and not isinstance(raw, bool):
                if raw < 0:
                    raise ValueError(f"{key} must not be negative (got {raw})")
                out[key] = timedelta(seconds=raw)
        return out

    @property
    def x_handles(self) -> list[str]:
        """Main X handle first, then aliases: the accounts this brand may answer from."""
        return self.handles_on("x")

    def handles_on(self, channel: str) -> list[str]:
        """Main handle on ``channel`` first, then its aliases there."""
        main = [self.handles[channel]] if channel in self.handles else []
        return main + list(self.aliases.get(channel, []))


class WorldSpec(_Model):
    """Seed, start time, time zone, the researcher's account and the brands.

    ``team``: more researcher accounts per channel, for a study with several
    (``accounts = [...]``). Each is its own account with its own identity, posts and
    notifications, as on the real platforms: an X or Mastodon request acts as the account its
    token names (``Bearer sandbox:<account>``), a Bluesky one as the account its session was
    created for; any other token acts as ``researcher``."""

    seed: int = 0
    start: datetime
    timezone: str = "UTC"
    researcher: dict[str, str]
    team: dict[str, list[str]] = Field(default_factory=dict)
    brands: list[BrandSpec] = Field(default_factory=list)

    @field_validator("team")
    @classmethod
    def _team(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        if set(value) - set(EMULATED):
            raise ValueError(
                'team accounts are emulated on x, mastodon and bluesky, e.g. {"x": ["shopper_b"]}'
            )
        return {k: [_handle(k, h) for h in v] for k, v in value.items() if v}

    @field_validator("start")
    @classmethod
    def _start(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("start needs a time zone, e.g. '2026-03-02T09:00:00Z'")
        value = value.astimezone(UTC)
        if value < EARLIEST_START:
            raise ValueError("start must be after 2010-11-05: X ids cannot encode earlier times")
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}; use e.g. 'Europe/London'") from None
        return value

    @field_validator("researcher")
    @classmethod
    def _researcher(cls, value: dict[str, str]) -> dict[str, str]:
        if not set(value) & set(EMULATED):
            raise ValueError(
                'researcher needs an x handle (or a mastodon or bluesky account), e.g. '
                '{"x": "mystery_researcher"}'
            )
        return {k: _handle(k, v) for k, v in value.items()}

    @model_validator(mode="after")
    def _unique(self) -> WorldSpec:
        names: set[str] = set()
        for brand in self.brands:
            if brand.name in names:
                raise ValueError(f"brand {brand.name!r} is listed twice")
            names.add(brand.name)
        for channel, handles in self.team.items():
            if channel not in self.researcher:
                raise ValueError(
                    f"team lists {channel} accounts but researcher has none there; put the "
                    f"first one in researcher.{channel}"
                )
            if channel == "mastodon":
                domain = _domain(self.researcher[channel])
                other = next((h for h in handles if _domain(h, domain) != domain), None)
                if other is not None:
                    raise ValueError(
                        f"mastodon account @{other} is on another instance than "
                        f"@{self.researcher[channel]}: the sandbox is one Mastodon instance, so "
                        "every researcher account there must share its domain"
                    )
        for channel in EMULATED:
            seen: dict[str, str] = {}
            if channel in self.researcher:
                seen[self.researcher[channel].casefold()] = "the researcher"
            for handle in self.team.get(channel, []):
                if handle.casefold() in seen:
                    raise ValueError(f"researcher account @{handle} is listed twice")
                seen[handle.casefold()] = "the researcher"
            for brand in self.brands:
                for handle in brand.handles_on(channel):
                    owner = seen.get(handle.casefold())
                    if owner is not None:
                        where = "" if channel == "x" else f" on {channel}"
                        raise ValueError(
                            f"handle @{handle} of brand {brand.name!r} is already used by "
                            f"{owner}{where}"
                        )
                    seen[handle.casefold()] = f"brand {brand.name!r}"
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def to_body(self) -> dict[str, Any]:
        """The JSON body for ``PUT /_sandbox/world`` (durations as seconds)."""
        body = self.model_dump(mode="json")
        body["start"] = self.start.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        for brand, model in zip(body["brands"], self.brands, strict=True):
            for key in _DURATION_FIELDS:
                brand["profile"][key] = getattr(model.profile, key).total_seconds()
        return body

    def canonical(self) -> dict[str, Any]:
        """What two bodies must share to describe the same world."""
        return self.to_body()

    @classmethod
    def from_study(cls, study: Study, start: datetime) -> WorldSpec:
        """The world a study runs in: its brands with their profiles, its seed and time zone.

        Brands without a profile get the default one (always answers after about an hour).
        The researcher has an account on each emulated channel the study uses; a channel
        with several accounts (``accounts = [...]``) has them all, the first as ``researcher``.
        """
        researcher = {c: study.channels[c].account_names[0]
                      for c in EMULATED if c in study.channels}
        team = {c: list(study.channels[c].account_names[1:])
                for c in researcher if len(study.channels[c].account_names) > 1}
        if not researcher:
            raise SandboxError(
                "the sandbox emulates X, Mastodon and Bluesky only: add [channels.x], "
                "[channels.mastodon] or [channels.bluesky] (the researcher's account) to run "
                "this study in it"
            )
        brands = [
            BrandSpec(
                name=b.name,
                handles=dict(b.handles),
                aliases={k: list(v) for k, v in b.aliases.items()},
                profile=study.sandbox.profiles.get(b.profile or "", Profile()),
            )
            for b in study.brands
        ]
        try:
            return cls(
                seed=study.sandbox.seed,
                start=start,
                timezone=study.timezone,
                researcher=researcher,
                team=team,
                brands=brands,
            )
        except ValidationError as exc:
            problems = "; ".join(str(e["msg"]).removeprefix("Value error, ")
                                 for e in exc.errors())
            raise SandboxError(f"the sandbox cannot emulate this study: {problems}") from None
