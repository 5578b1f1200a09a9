"""Hand-logged channels: phone, chat, Facebook, Instagram, LinkedIn, WhatsApp, web forms.

None of these lets a private researcher post as a customer and read the brand's answer through
an API (research/platforms.md §6), so the researcher asks by hand and *logs* it: when the probe
went out, when each reply came and whether it answered. This module is what ``mystery log``
calls; it never prints.

Why the times are treated apart. A platform's timestamp is the platform's; a hand-logged time
is the researcher's reading of their own clock, good to a minute at best. So every hand time is
stored in whole minutes (UTC), the probe is marked ``timing_source = 'hand'`` and each entry is
kept in ``hand_log`` with where it came from, so method notes can say which figures rest on hand
timing (DESIGN.md rule 6). Times are typed in the study's time zone (``14:05``,
``2026-03-02 14:05``, or with an offset such as ``2026-10-25 01:30 +01:00`` when a clock change
makes the local time ambiguous).

Unanswered is data (rule 2): a hand-logged probe with no reply logged is settled as
unanswered once its cutoff has passed on the real clock (:func:`settle`). A researcher who
stops waiting (hung up after twenty minutes on hold) *gives up*: the probe is settled then, and
``Store.gave_up`` tells the analysis to censor it there rather than at the cutoff.

The CSV form of the same entries is in :mod:`mystery.collect.handcsv`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from mystery.clock import iso
from mystery.coding.rules import probe_times
from mystery.errors import MysteryError
from mystery.store.address import store_address
from mystery.store.store import HandEntry, ProbeRow, ReplyRow, Store, open_or_discard
from mystery.study.load import LoadedStudy
from mystery.study.model import Study
from mystery.study.plan import make_plan
from mystery.words import HAND_LOGGED_CHANNELS, Outcome

HAND_CODES = ("acknowledgement", "resolution")
FUTURE_SLACK = timedelta(minutes=1)  # a typed "now" may round up past the real clock
_TIME = re.compile(
    r"^(?:(?P<date>\d{4}-\d{2}-\d{2})[ T])?(?P<h>\d{1,2}):(?P<m>\d{2})(?::(?P<s>\d{2}))?"
    r"\s*(?P<off>Z|[+-]\d{2}:?\d{2})?$"
)


class HandLogError(MysteryError):
    """A hand-logged entry cannot be accepted as given (the message says why and what to do);
    ``field`` names what is wrong (probe, sent_at, reply_at, code) for a CSV's column."""

    def __init__(self, message: str, field: str = "probe") -> None:
        super().__init__(message)
        self.field = field


def minute(when: datetime) -> datetime:
    """A time as hand logging keeps it: UTC, whole minutes (seconds dropped)."""
    return when.astimezone(UTC).replace(second=0, microsecond=0)


def parse_local_time(text: str, zone: ZoneInfo, now: datetime, *,
                     date_required: bool = False) -> datetime:
    """``now``, ``14:05`` (today in ``zone``), ``2026-03-02 14:05`` or either with an offset.

    A local time that a clock change skips is refused, and one it repeats is refused unless an
    offset says which: guessing would shift a response time by an hour."""
    text = text.strip()
    if text.lower() == "now" and not date_required:
        return minute(now)
    match = _TIME.match(text)
    if not match:
        example = "2026-03-02 14:05" if date_required else "'now', 14:05 or 2026-03-02 14:05"
        raise ValueError(f"cannot read {text!r} as a time; write e.g. {example}")
    if date_required and not match["date"]:
        raise ValueError(f"{text!r} has no date; write e.g. 2026-03-02 14:05")
    if match["s"] not in (None, "00"):
        raise ValueError(f"{text!r} has seconds; hand-logged times are to the minute, "
                         "e.g. 14:05")
    day = (datetime.strptime(match["date"], "%Y-%m-%d").date() if match["date"]
           else now.astimezone(zone).date())
    try:
        naive = datetime(day.year, day.month, day.day, int(match["h"]), int(match["m"]))
    except ValueError:
        raise ValueError(f"{text!r} is not a valid time of day") from None
    if match["off"]:
        offset = "+0000" if match["off"] == "Z" else match["off"].replace(":", "")
        return minute(datetime.strptime(f"{naive:%Y-%m-%d %H:%M} {offset}", "%Y-%m-%d %H:%M %z"))
    first, second = naive.replace(tzinfo=zone), naive.replace(tzinfo=zone, fold=1)
    if first.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != naive:
        raise ValueError(f"{text!r} does not exist in {zone.key} (the clocks went forward)")
    if first.utcoffset() != second.utcoffset():
        raise ValueError(
            f"{text!r} happens twice in {zone.key} (the clocks went back); add the offset, "
            f"e.g. '{naive:%Y-%m-%d %H:%M} {_offset(first)}' or "
            f"'{naive:%Y-%m-%d %H:%M} {_offset(second)}'"
        )
    return minute(first)


def _offset(dt: datetime) -> str:
    total = int((dt.utcoffset() or timedelta(0)).total_seconds() // 60)
    sign = "+" if total >= 0 else "-"
    return f"{sign}{abs(total) // 60:02d}:{abs(total) % 60:02d}"


def hand_channels(study: Study) -> list[str]:
    return [c for c in study.channels if c in HAND_LOGGED_CHANNELS]


@contextmanager
def open_store(loaded: LoadedStudy, db: str | Path | None = None) -> Iterator[Store]:
    """The study's store, made and planned on first use: a study logged only by hand never
    sees ``mystery run``. Refuses a study without hand-logged channels. A store made here is
    deleted again if the command fails before anything is logged."""
    study = loaded.study
    if not hand_channels(study):
        raise HandLogError(
            f"study {study.name!r} has no hand-logged channel (one of "
            f"{', '.join(HAND_LOGGED_CHANNELS)}); its channels are collected by 'mystery run'"
        )
    with open_or_discard(store_address(db, loaded.default_db)) as store:
        store.initialise(study, make_plan(study))
        yield store


def contact_point(study: Study, probe: ProbeRow) -> str:
    """Where the researcher reaches the brand on this channel (free text: a phone number, a
    page's URL), or '' when the study file gives none."""
    return study.brand(probe.brand).handles.get(probe.channel, "")


@dataclass(frozen=True)
class Pending:
    """A hand-logged probe waiting for the researcher: to be sent, or awaiting replies."""

    probe: ProbeRow
    contact: str
    replies: list[ReplyRow]
    deadline: datetime | None  # sent_at + cutoff, once sent

    @property
    def to_send(self) -> bool:
        return self.probe.state in ("planned", "sending")


def pending(store: Store, study: Study, now: datetime) -> list[Pending]:
    """Due hand-logged probes not yet sent, then sent ones still open, each in plan order."""
    channels = set(hand_channels(study))
    due = [p for p in store.due_probes(now) if p.channel in channels]
    open_ = [p for p in store.probes(state="sent") if p.channel in channels]
    replies = store.replies_for(p.id for p in open_)
    return [
        Pending(p, contact_point(study, p), replies.get(p.id, []),
                p.sent_at + study.cutoff if p.sent_at else None)
        for p in [*due, *open_]
    ]


# -- entries -----------------------------------------------------------------------------------


def loggable(store: Store, probe_id: str) -> ProbeRow:
    """The probe ``probe_id`` if it can be logged by hand (exists, hand-logged, not excluded)."""
    found = store.probes_by_id([probe_id])
    if not found:
        raise HandLogError(f"no probe {probe_id!r} in this study; 'mystery plan' lists them")
    probe = found[0]
    if probe.channel not in HAND_LOGGED_CHANNELS:
        raise HandLogError(f"{probe_id} is on channel {probe.channel!r}, which mystery "
                           "collects itself ('mystery run'); only hand-logged channels are "
                           "logged by hand")
    if probe.outcome == "excluded":
        raise HandLogError(f"{probe_id} was excluded from the study; nothing can be logged")
    return probe


def _local(at: datetime, study: Study) -> str:
    """A time as the researcher typed it: in the study's zone."""
    return f"{at.astimezone(study.zone):%Y-%m-%d %H:%M} ({study.timezone})"


def _not_future(what: str, at: datetime, study: Study, now: datetime, field: str) -> None:
    if at > now + FUTURE_SLACK:
        raise HandLogError(f"{what} {_local(at, study)} is in the future; check the date",
                           field)


def sent_entry(store: Store, study: Study, probe_id: str, at: datetime, now: datetime,
               source: str = "prompt") -> HandEntry | None:
    """The entry that logs ``probe_id`` as sent at ``at``; None if it already is, at that time."""
    probe, at = loggable(store, probe_id), minute(at)
    _not_future("the sent time", at, study, now, "sent_at")
    if probe.sent_at is not None:
        if probe.sent_at == at:
            return None
        raise HandLogError(
            f"{probe_id} was logged as sent at {_local(probe.sent_at, study)}; give that "
            "time (or leave it out) rather than another", "sent_at"
        )
    return HandEntry(probe_id, "sent", at, source, message_id=f"hand:{probe_id}")


def reply_time(store: Store, study: Study, probe_id: str, at: datetime, now: datetime,
               sent_at: datetime | None = None) -> datetime:
    """``at`` as a reply time for ``probe_id`` (whole minutes), once checked: after the send
    (``sent_at`` when the send is logged in the same batch), not in the future."""
    probe, at = loggable(store, probe_id), minute(at)
    sent = probe.sent_at or sent_at
    if sent is None:
        raise HandLogError(f"{probe_id} has not been logged as sent; log when it was sent "
                           "first", "sent_at")
    if at < sent:
        raise HandLogError(f"the reply at {_local(at, study)} comes before the probe was sent "
                           f"({_local(sent, study)}); check both times", "reply_at")
    _not_future("the reply time", at, study, now, "reply_at")
    return at


def reply_entry(store: Store, study: Study, probe_id: str, at: datetime, code: str,
                now: datetime, source: str = "prompt", note: str = "",
                sent_at: datetime | None = None) -> HandEntry:
    """The entry that logs a reply to ``probe_id`` at ``at`` coded ``code``."""
    at = reply_time(store, study, probe_id, at, now, sent_at)
    if code not in HAND_CODES:
        raise HandLogError(f"code {code!r} is not one of {', '.join(HAND_CODES)}", "code")
    probe = loggable(store, probe_id)
    return HandEntry(
        probe_id, "reply", at, source, message_id=f"hand:{probe_id}:{iso(at)}:{code}",
        code=code, author=contact_point(study, probe) or probe.brand,
        text=note or f"(logged by hand: {code})",
    )


@dataclass(frozen=True)
class Logged:
    new: int  # entries not logged before (logging the same twice changes nothing)
    settled: list[str]  # probes settled (or settled again) by them


def log(store: Store, study: Study, entries: list[HandEntry], now: datetime) -> Logged:
    """Record ``entries`` in one transaction, then settle what they decide."""
    new = store.record_hand_log(entries, now)
    return Logged(new, settle(store, study, now, touched={e.probe_id for e in entries}))


def give_up(store: Store, study: Study, probe_id: str, at: datetime, now: datetime,
            source: str = "prompt") -> None:
    """Stop waiting for ``probe_id``: settled at ``at`` (answered if a reply was logged)."""
    probe, at = loggable(store, probe_id), minute(at)
    if probe.state != "sent" or probe.sent_at is None:
        raise HandLogError(f"{probe_id} is {probe.state}, not awaiting replies")
    _not_future("the time", at, study, now, "at")
    replies = store.replies_for([probe_id]).get(probe_id, [])
    times = probe_times(probe.sent_at, replies, store.codes(), study.cutoff)
    outcome = "answered" if times.ack is not None else "unanswered"
    store.record_hand_log([HandEntry(probe_id, "gave_up", at, source, outcome=outcome)], now)


def settle(store: Store, study: Study, now: datetime,
           touched: set[str] | None = None) -> list[str]:
    """Settle hand-logged probes the real clock now decides: resolved ones, and those whose
    cutoff has passed (answered if a reply came within it, else unanswered). ``touched``
    probes are settled again even if already settled, since a reply logged late (a CSV typed
    up after the study) can turn an unanswered probe into an answered one."""
    channels = set(hand_channels(study))
    probes = [p for p in store.probes(state="sent") if p.channel in channels]
    if touched:
        probes += [p for p in store.probes_by_id(touched)
                   if p.state == "settled" and p.outcome != "excluded" and p.sent_at]
    replies = store.replies_for(p.id for p in probes)
    codes = store.codes()
    gave_up = store.gave_up()
    settled = []
    for probe in probes:
        assert probe.sent_at is not None
        times = probe_times(probe.sent_at, replies.get(probe.id, []), codes, study.cutoff)
        over = probe.sent_at + study.cutoff <= now or probe.id in gave_up
        outcome: Outcome | None = (
            "answered" if times.resolution is not None or (over and times.ack is not None)
            else "unanswered" if over else None)
        if outcome is not None and (probe.state != "settled" or probe.outcome != outcome):
            store.settle(probe.id, outcome, now)
            settled.append(probe.id)
    return settled
