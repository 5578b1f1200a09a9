"""The barrier over the runners sharing a standalone sandbox's clock (``mystery.sandbox.runners``):
the clock advances only to the earliest instant every announced runner asked for, a working
runner holds it, a silent one is dropped after the timeout, and the control plane is not held.

The waits here are zero (answer at once with the time reached) and the wall clock is a counter,
so each rule is checked without threads or sleeps; the HTTP test at the end goes through the
real routes with a real wait.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from mystery.clock import iso, parse_iso
from mystery.sandbox.runners import Runners
from mystery.sandbox.server import SandboxServer
from mystery.sandbox.spec import WorldSpec
from mystery.sandbox.world import World

START = datetime(2026, 3, 2, 9, tzinfo=UTC)


class Wall:
    """A wall clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def world() -> World:
    world = World()
    world.configure(WorldSpec(start=START, researcher={"x": "shopper_a"}))
    return world


def at(minutes: int) -> datetime:
    return START + timedelta(minutes=minutes)


def test_the_clock_goes_to_the_earliest_instant_every_runner_asked_for(world: World) -> None:
    runners = Runners(timeout=10, wall=Wall())
    runners.join("a", "x:shopper_a", world)
    runners.join("b", "x:shopper_b", world)
    # a waits for 09:30, but b is working (it asked for nothing yet): the clock holds.
    assert runners.ask("a", "x:shopper_a", at(30), world, wait=0) == START
    # b waits for 09:10: the clock goes there, b's instant, not a's.
    assert runners.ask("b", "x:shopper_b", at(10), world, wait=0) == at(10)
    # b works at 09:10; a asking again still waits for it.
    assert runners.ask("a", "x:shopper_a", at(30), world, wait=0) == at(10)
    # b waits for 10:00: now a's 09:30 is the earliest.
    assert runners.ask("b", "x:shopper_b", at(60), world, wait=0) == at(30)
    # b leaves: nobody but a is waited for, and a works at 09:30.
    assert runners.leave("b", world) == at(30)
    assert runners.ask("a", "x:shopper_a", at(45), world, wait=0) == at(45)


def test_a_runner_alone_moves_the_clock_as_before(world: World) -> None:
    runners = Runners(timeout=10, wall=Wall())
    runners.join("a", "x:shopper_a", world)
    assert runners.ask("a", "x:shopper_a", at(90), world, wait=0) == at(90)
    assert runners.ask("a", "x:shopper_a", at(5), world, wait=0) == at(90)  # never back


def test_a_silent_runner_is_dropped_after_the_timeout_and_joins_again(world: World) -> None:
    wall = Wall()
    runners = Runners(timeout=10, wall=wall)
    runners.join("a", "x:shopper_a", world)
    runners.join("b", "x:shopper_b", world)
    wall.now = 9.5
    assert runners.ask("a", "x:shopper_a", at(30), world, wait=0) == START  # b may be busy
    wall.now = 10.5  # b silent for longer than the timeout: dead, or too slow to wait for
    assert runners.ask("a", "x:shopper_a", at(30), world, wait=0) == at(30)
    assert runners.dropped == ["x:shopper_b"]
    # b was only slow: its next request announces it again, working at the present.
    assert runners.ask("b", "x:shopper_b", at(20), world, wait=0) == at(30)
    assert runners.ask("a", "x:shopper_a", at(40), world, wait=0) == at(30)  # held by b again


def test_a_restarted_runner_replaces_its_dead_predecessor_at_once(world: World) -> None:
    runners = Runners(timeout=10, wall=Wall())
    runners.join("a", "x:shopper_a", world)
    runners.join("b-first", "x:shopper_b", world)  # killed while working: it says nothing more
    runners.join("b-again", "x:shopper_b", world)  # the same accounts, restarted
    assert runners.ask("b-again", "x:shopper_b", at(20), world, wait=0) == START  # a works
    assert runners.ask("a", "x:shopper_a", at(30), world, wait=0) == at(20)
    assert [r["name"] for r in runners.view()["runners"]] == [
        "x:shopper_a", "x:shopper_b"]


def test_without_the_fair_clock_each_wait_moves_the_clock_at_once(world: World) -> None:
    runners = Runners(timeout=10, wall=Wall(), fair=False)  # mystery sandbox --no-fair-clock
    runners.join("a", "x:shopper_a", world)
    runners.join("b", "x:shopper_b", world)
    assert runners.ask("a", "x:shopper_a", at(30), world, wait=0) == at(30)  # b not waited for
    assert runners.view()["runners"] == []


def test_over_http_a_waiting_runner_is_answered_when_the_other_catches_up() -> None:
    with SandboxServer() as sandbox:
        body = WorldSpec(start=START, researcher={"x": "shopper_a"}).to_body()
        assert httpx.put(f"{sandbox.url}/_sandbox/world", json=body).status_code == 201
        for runner in ("a", "b"):
            joined = httpx.post(f"{sandbox.url}/_sandbox/runners",
                                json={"runner": runner, "name": f"x:{runner}"})
            assert joined.status_code == 201 and joined.json()["now"] == iso(START)
        answers: dict[str, str] = {}

        def wait_for(minutes: int) -> None:
            answer = httpx.post(f"{sandbox.url}/_sandbox/clock", timeout=10, json={
                "advance_to": iso(at(minutes)), "runner": "a", "name": "x:a"})
            answers["a"] = answer.json()["now"]

        waiting = threading.Thread(target=wait_for, args=(30,))
        waiting.start()
        # Meanwhile the world goes on answering platform requests (the wait holds no lock).
        me = httpx.get(f"{sandbox.url}/2/users/me", headers={"Authorization": "Bearer t"})
        assert me.status_code == 200
        assert parse_iso(httpx.get(f"{sandbox.url}/_sandbox/clock").json()["now"]) == START
        answer = httpx.post(f"{sandbox.url}/_sandbox/clock", json={
            "advance_to": iso(at(45)), "runner": "b", "name": "x:b"})
        assert parse_iso(answer.json()["now"]) == at(30)  # a's instant: the earliest asked for
        waiting.join(5)
        assert parse_iso(answers["a"]) == at(30)
        left = httpx.request("DELETE", f"{sandbox.url}/_sandbox/runners", json={"runner": "a"})
        assert parse_iso(left.json()["now"]) == at(45)  # only b is waited for now
        bad = httpx.post(f"{sandbox.url}/_sandbox/clock",
                         json={"advance_to": iso(at(50)), "runner": "b"})
        assert bad.status_code == 400 and "name" in bad.json()["error"]
