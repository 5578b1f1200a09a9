"""The sandbox's fault switches themselves: what each accepts, refuses, and replays."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from mystery.clock import parse_iso
from mystery.errors import SandboxError
from mystery.sandbox import SandboxControl, SandboxServer
from mystery.sandbox.faults import Fault, Faults

MENTIONS = "GET /2/users/:id/mentions"


def _pattern(seed: int, n: int = 40) -> list[bool]:
    faults = Faults()
    faults.add(Fault(MENTIONS, times=None, probability=0.3, seed=seed))
    return [faults.take(MENTIONS) is not None for _ in range(n)]


def test_a_probabilistic_fault_replays_exactly_with_its_seed() -> None:
    assert _pattern(1) == _pattern(1)
    assert _pattern(1) != _pattern(2)
    assert 4 < sum(_pattern(1)) < 25


def test_scripted_faults_skip_then_fire_a_set_number_of_times_in_order() -> None:
    faults = Faults()
    faults.add(Fault(MENTIONS, status=500, times=2, skip=1))
    faults.add(Fault(MENTIONS, status=429, times=1))
    fired = [(t[0].status if (t := faults.take(MENTIONS)) else None) for _ in range(5)]
    assert fired == [429, 500, 500, None, None]  # the skipped request met the next fault
    assert faults.fired == {f"{MENTIONS} problem": 3}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"route": "GET /nowhere"}, "route must be one of"),
        ({"route": MENTIONS, "body": "gibberish"}, "body must be one of"),
        ({"route": MENTIONS, "when": "during"}, "when must be before or after"),
        ({"route": MENTIONS, "probability": 0}, "probability above 0"),
        ({"route": MENTIONS, "times": 0}, "times at least 1 (or null: without end)"),
        ({"route": MENTIONS, "delay": 301}, "delay is 0-300 seconds"),
        ({"route": MENTIONS, "colour": "red"}, "unknown key 'colour'"),
    ],
)
def test_a_bad_fault_is_refused_with_what_to_fix(sandbox: SandboxServer, body: dict[str, object],
                                                 message: str) -> None:
    answer = httpx.post(f"{sandbox.url}/_sandbox/faults", json=body)
    assert answer.status_code == 400 and message in answer.json()["error"]


def test_pending_faults_and_their_firings_are_listed(control: SandboxControl) -> None:
    control.add_fault(MENTIONS, 503, times=None, probability=0.5, seed=3, body="malformed")
    [pending] = control.faults()["faults"]
    assert pending == {"route": MENTIONS, "status": 503, "times": None, "body": "malformed",
                       "when": "before", "delay": 0.0, "probability": 0.5, "seed": 3,
                       "skip": 0, "rate_headers": True}
    control.clear_faults()
    assert control.faults() == {"faults": [], "fired": {}}


def test_route_limits_can_be_lowered_and_refusals_are_counted(control: SandboxControl) -> None:
    assert control.enforce_rate_limits(True, {MENTIONS: 3}) == {
        "enforce": True, "limits": {MENTIONS: 3}, "refused": {}}
    with pytest.raises(SandboxError, match="whole numbers >= 1"):
        control.enforce_rate_limits(True, {MENTIONS: 0})


def test_a_crowd_of_unrelated_mentions_is_nobodys_reply(sandbox: SandboxServer,
                                                        control: SandboxControl) -> None:
    httpx.put(f"{sandbox.url}/_sandbox/world", json={
        "seed": 1, "start": "2026-03-02T09:00:00Z", "researcher": {"x": "res"}, "brands": []})
    start = parse_iso("2026-03-02T10:00:00Z")
    control.add_crowd(5, start, start + timedelta(hours=5))
    control.advance_to(start + timedelta(days=1))
    assert control.posts()["replies"] == []
    mentions = sandbox.world.mentions_of[sandbox.world.researcher.id]
    assert [sandbox.world.posts[i].created_at for i in mentions] == [
        start + timedelta(hours=h) for h in range(5)]
    with pytest.raises(SandboxError, match="end must be after start"):
        control.add_crowd(5, start, start)


def test_the_beyond_reach_quirk_is_switched_explicitly(sandbox: SandboxServer,
                                                       control: SandboxControl) -> None:
    control.set_mentions_beyond_reach("empty")
    assert httpx.get(f"{sandbox.url}/_sandbox/quirks").json() == {
        "mentions_beyond_reach": "empty"}
    with pytest.raises(SandboxError, match='"oldest"'):
        control.set_mentions_beyond_reach("never")
