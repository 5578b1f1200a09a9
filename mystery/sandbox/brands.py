"""Simulated brands: what a brand does with a post that mentions it, decided once, at post time.

Why the fate is seeded by (world seed, brand, post text) and nothing else: a study that crashes
and resumes, or runs its probes in another order, must meet the same brands. Arrival order, wall
time and thread scheduling never reach the random generator. The draws are made in a fixed
sequence whatever branch is taken, so changing one profile field does not reshuffle the others.

Latencies are log-normal around the profile's median (sigma = ``ack_spread``), the shape that
published response-time studies show: most answers come fast, a long tail comes days later. With
business hours the delay is counted in business time in the world's time zone, so a brand that
works 9 to 5 never answers at night.

A brand may move a conversation to direct messages (``dm_share``): it acknowledges in public
("we've sent you a DM") and the answer arrives as a DM, ``resolve_after`` later. Only X's sandbox
carries DMs, so other channels pass ``dms=False`` and such a brand answers there in public.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from mystery.hours import Window, add_business_time, next_open
from mystery.sandbox.spec import BrandSpec

ReplyKind = Literal["holding", "answer"]

MAX_DELAY = timedelta(days=365)
"""A log-normal tail can reach centuries; a year is already far past any cutoff."""

HOLDING_TEXTS = (
    "Sorry to hear that, please DM us your order details and we'll take a look.",
    "Hi, thanks for reaching out! Could you send us a DM with a few more details?",
    "We're sorry for the trouble. Please DM us and our team will look into it.",
    "Thanks for letting us know. Drop us a DM with your account email and we'll help.",
)
"""First replies that acknowledge without answering: the "please DM us" kind."""

ANSWER_TEXTS = (
    "Thanks for your question! Yes, you can: it's all explained at the help desk in store.",
    "Good question! Our team has checked and this is sorted for you now.",
    "Hi there, thanks for waiting. Here's the answer: it usually takes 3-5 working days.",
    "Thanks for getting in touch. You can do that from your account page under Settings.",
)
"""Replies that answer the question."""

DM_ACK_TEXTS = (
    "Hi, we've sent you a DM so we can sort this out.",
    "Thanks for getting in touch! We've replied to you by direct message.",
    "We've sent you a DM with the details.",
    "Sorry to hear that. We've just sent you a direct message.",
)
"""Public acknowledgements of a brand that answers by direct message (each a holding message)."""


def business_delay(
    start: datetime, delay: timedelta, hours: list[Window], tz: ZoneInfo
) -> datetime:
    """``delay`` of business time after ``start``, counted from the next opening, so even a
    zero delay never lands outside the brand's hours."""
    return add_business_time(next_open(start, hours, tz), delay, hours, tz)


@dataclass(frozen=True, slots=True)
class PlannedReply:
    """One reply a brand will post: when, from which of its handles, saying what; ``direct``
    when it is a direct message to the researcher rather than a public reply."""

    kind: ReplyKind
    at: datetime
    handle: str
    message: str
    direct: bool = False


@dataclass(frozen=True, slots=True)
class Fate:
    """What happens to one post: no reply at all, or one or two replies at fixed times."""

    answers: bool
    replies: tuple[PlannedReply, ...] = ()

    @property
    def ack_at(self) -> datetime | None:
        return self.replies[0].at if self.replies else None

    @property
    def resolution_at(self) -> datetime | None:
        return next((r.at for r in self.replies if r.kind == "answer"), None)


def _ms(when: datetime) -> datetime:
    """Floor to the millisecond: snowflake ids carry milliseconds, no finer."""
    when = when.astimezone(UTC)
    return when.replace(microsecond=when.microsecond // 1000 * 1000)


def _lognormal(median: timedelta, sigma: float, z: float) -> timedelta:
    return min(median * math.exp(sigma * z), MAX_DELAY)


def fate_seed(seed: int, brand: str, text: str) -> str:
    """The stable string that seeds a fate (``random.Random`` hashes strings with SHA-512)."""
    return f"mystery-sandbox\x1f{seed}\x1f{brand}\x1f{text}"


def decide_fate(
    seed: int,
    brand: BrandSpec,
    text: str,
    posted_at: datetime,
    tz: ZoneInfo,
    handles: list[str] | None = None,
    *,
    dms: bool = False,
) -> Fate:
    """Decide whether, when and how ``brand`` replies to a post made at ``posted_at``.

    ``handles`` (main first, then aliases) are the accounts it may answer from: its X handles
    unless another channel's are given, so every channel shares one fate machinery. ``dms``:
    the channel carries direct messages, so the profile's ``dm_share`` applies."""
    rng = random.Random(fate_seed(seed, brand.name, text))
    profile = brand.profile
    answers_u = rng.random()
    ack_z = rng.gauss(0.0, 1.0)
    holding_u = rng.random()
    resolve_z = rng.gauss(0.0, 1.0)
    picks = [(rng.random(), rng.random(), rng.random()) for _ in range(2)]
    dm_u = rng.random()  # drawn last: fates decided before dm_share existed stay as they were

    handles = brand.x_handles if handles is None else handles
    if not handles or answers_u >= profile.answer_rate:
        return Fate(answers=False)

    direct = dms and dm_u < profile.dm_share

    def reply(kind: ReplyKind, at: datetime, pick: tuple[float, float, float]) -> PlannedReply:
        alias_u, alias_pick, text_pick = pick
        aliases = handles[1:]
        handle = handles[0]
        if aliases and alias_u < profile.alias_share:
            handle = aliases[int(alias_pick * len(aliases))]
        pool = (DM_ACK_TEXTS if direct else HOLDING_TEXTS) if kind == "holding" else ANSWER_TEXTS
        return PlannedReply(kind, _ms(at), handle, pool[int(text_pick * len(pool))])

    ack_at = business_delay(
        posted_at, _lognormal(profile.ack_median, profile.ack_spread, ack_z), profile.hours, tz
    )
    if not direct and holding_u >= profile.holding_share:
        return Fate(answers=True, replies=(reply("answer", ack_at, picks[0]),))
    holding = reply("holding", ack_at, picks[0])
    answer_at = business_delay(
        holding.at,
        _lognormal(profile.resolve_after, profile.ack_spread, resolve_z),
        profile.hours,
        tz,
    )
    answer = reply("answer", answer_at, picks[1])
    if direct:  # the DM comes from the account that said it would write
        answer = replace(answer, handle=holding.handle, direct=True)
    return Fate(answers=True, replies=(holding, answer))
