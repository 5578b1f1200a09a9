"""Acknowledgement and resolution times from replies: the rules every published number uses."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from mystery.coding.rules import auto_code, probe_times

SENT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class R:
    message_id: str
    minutes: float
    auto_code: str
    channel: str = "x"

    @property
    def created_at(self) -> datetime:
        return SENT + timedelta(minutes=self.minutes)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("Sorry to hear that! Please DM us your order number.", "acknowledgement"),
        ("Hi, could you send us a direct message with the details?", "acknowledgement"),
        ("We'll look into this and get back to you.", "acknowledgement"),
        ("Yes, delivery is free over £30.", "resolution"),
        ("We're open until 8pm today.", "resolution"),
    ],
)
def test_auto_code_tells_holding_messages_from_answers(text: str, code: str) -> None:
    assert auto_code(text) == code


def test_first_reply_acknowledges_and_first_answer_resolves() -> None:
    replies = [
        R("3", 50, "resolution"),
        R("1", 9, "acknowledgement"),
        R("2", 20, "acknowledgement"),
    ]
    times = probe_times(SENT, replies, {}, timedelta(days=7))
    assert times.ack == 9 * 60
    assert times.resolution == 50 * 60


def test_answer_as_first_reply_is_both() -> None:
    times = probe_times(SENT, [R("1", 543, "resolution")], {}, timedelta(days=7))
    assert times.ack == times.resolution == 543 * 60


def test_manual_code_overrides_the_automatic_one() -> None:
    replies = [R("1", 9, "acknowledgement"), R("2", 30, "resolution")]
    codes = {("x", "1"): "resolution", ("x", "2"): "acknowledgement"}
    times = probe_times(SENT, replies, codes, timedelta(days=7))
    assert times.resolution == 9 * 60


def test_not_brand_replies_are_ignored() -> None:
    replies = [R("1", 5, "not_brand"), R("2", 30, "resolution")]
    times = probe_times(SENT, replies, {}, timedelta(days=7))
    assert times.ack == 30 * 60


def test_replies_after_the_cutoff_do_not_count() -> None:
    replies = [R("1", 30, "acknowledgement"), R("2", 3 * 60, "resolution")]
    times = probe_times(SENT, replies, {}, timedelta(hours=2))
    assert times.ack == 30 * 60
    assert times.resolution is None  # censored at the cutoff


def test_no_replies_is_unanswered() -> None:
    times = probe_times(SENT, [], {}, timedelta(days=7))
    assert times.ack is None and times.resolution is None
