"""Simulated brands: fates are deterministic, follow their profiles, and respect business hours."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests

from mystery.clock import parse_iso
from mystery.hours import Window
from mystery.sandbox import SandboxServer, WorldSpec
from mystery.sandbox.brands import HOLDING_TEXTS, decide_fate
from mystery.sandbox.spec import BrandSpec
from mystery.study.model import Profile
from tests.sandbox.sandbox_helpers import brand, world_body

LONDON = ZoneInfo("Europe/London")
MONDAY_9 = datetime(2026, 3, 2, 9, tzinfo=UTC)
WEEKDAYS_9_TO_5 = [Window(days="mon-fri", start=time(9), end=time(17))]


def _brand(**profile: Any) -> BrandSpec:
    return BrandSpec(
        name="Acme", handles={"x": "Acme"}, aliases={"x": ["AcmeHelp"]}, profile=Profile(**profile)
    )


def _run(
    body: dict[str, Any], texts: list[str], gap: timedelta = timedelta(minutes=7)
) -> dict[str, Any]:
    """Post ``texts`` in order into a fresh sandbox, ``gap`` apart; run 60 days; ground truth."""
    with SandboxServer() as sandbox:
        sandbox.world.configure(WorldSpec.model_validate(body))
        researcher = sandbox.world.researcher.id
        for text in texts:
            sandbox.world.create_post(researcher, text)
            sandbox.world.advance_by(gap)
        sandbox.world.advance_by(timedelta(days=60))
        return sandbox.ground_truth()


def _relative_fates(truth: dict[str, Any]) -> dict[str, tuple[Any, ...]]:
    """Per probe text: answers?, reply delays after the probe, reply kinds, reply authors."""
    replies = {r["id"]: r for r in truth["replies"]}
    out = {}
    for post in truth["posts"]:
        sent = parse_iso(post["created_at"])
        mine = [replies[i] for i in post["fate"]["reply_ids"]]
        out[post["text"]] = (
            post["fate"]["answers"],
            tuple(parse_iso(r["created_at"]) - sent for r in mine),
            tuple(r["kind"] for r in mine),
            tuple(r["author"] for r in mine),
        )
    return out


def test_the_same_seed_and_text_give_the_same_fate() -> None:
    acme = _brand(
        answer_rate=0.5, holding_share=0.5, resolve_after=timedelta(hours=2), alias_share=0.5
    )
    first = decide_fate(3, acme, "@Acme where is my order?", MONDAY_9, LONDON)
    again = decide_fate(3, acme, "@Acme where is my order?", MONDAY_9, LONDON)
    assert first == again
    others = {
        decide_fate(seed, acme, "@Acme where is my order?", MONDAY_9, LONDON) for seed in range(20)
    }
    assert len(others) > 5  # the seed matters


def test_fates_do_not_depend_on_posting_order() -> None:
    body = world_body(
        brand(
            "Acme",
            "Acme",
            ["AcmeHelp"],
            answer_rate=0.7,
            holding_share=0.5,
            resolve_after=1800,
            alias_share=0.5,
        ),
        brand("Globex", "Globex", answer_rate=0.5),
    )
    texts = [f"@{h} question {i}?" for i in range(15) for h in ("Acme", "Globex")]
    forwards = _relative_fates(_run(body, texts))
    backwards = _relative_fates(_run(body, texts[::-1], gap=timedelta(minutes=3)))
    assert forwards == backwards
    assert {f[0] for f in forwards.values()} == {True, False}  # the test sees both outcomes


def test_a_brand_that_never_answers_never_answers() -> None:
    truth = _run(
        world_body(brand("Silent", "Silent", answer_rate=0)),
        [f"@Silent hello {i}" for i in range(40)],
    )
    assert truth["replies"] == []
    assert all(
        p["fate"] == {"answers": False, "ack_at": None, "resolution_at": None, "reply_ids": []}
        for p in truth["posts"]
    )


def test_answer_rate_is_the_share_of_probes_answered() -> None:
    acme = _brand(answer_rate=0.3)
    answered = sum(
        decide_fate(1, acme, f"@Acme q{i}", MONDAY_9, LONDON).answers for i in range(2000)
    )
    assert 0.26 < answered / 2000 < 0.34


def test_latency_is_log_normal_around_the_median() -> None:
    acme = _brand(ack_median=timedelta(hours=1), ack_spread=0.8)
    delays = sorted(
        (decide_fate(1, acme, f"@Acme q{i}", MONDAY_9, LONDON).ack_at - MONDAY_9).total_seconds()  # type: ignore[operator]
        for i in range(2001)
    )
    assert 3000 < delays[1000] < 4200
    assert delays[0] < 1200 and delays[-1] > 14400  # a long tail both ways


def test_holding_reply_comes_first_then_the_answer() -> None:
    fate = decide_fate(
        1, _brand(holding_share=1, resolve_after=timedelta(hours=3)), "@Acme hi", MONDAY_9, LONDON
    )
    holding, answer = fate.replies
    assert (holding.kind, answer.kind) == ("holding", "answer")
    assert holding.message in HOLDING_TEXTS and "DM" in holding.message
    assert fate.ack_at == holding.at < answer.at == fate.resolution_at


def test_alias_share_decides_which_handle_answers() -> None:
    always = {
        decide_fate(1, _brand(alias_share=1), f"@Acme {i}", MONDAY_9, LONDON).replies[0].handle
        for i in range(30)
    }
    never = {
        decide_fate(1, _brand(alias_share=0), f"@Acme {i}", MONDAY_9, LONDON).replies[0].handle
        for i in range(30)
    }
    assert always == {"AcmeHelp"} and never == {"Acme"}


def test_replies_land_inside_business_hours() -> None:
    hours = [{"days": "mon-fri", "start": "09:00", "end": "17:00"}]
    body = world_body(
        brand(
            "Shop",
            "Shop",
            ack_median=3 * 3600,
            ack_spread=1.2,
            holding_share=0.5,
            resolve_after=7200,
            hours=hours,
        )
    )
    body["start"] = "2026-03-28T22:00:00Z"  # Saturday night, the eve of the switch to BST
    truth = _run(body, [f"@Shop question {i}" for i in range(40)], gap=timedelta(minutes=41))
    assert len(truth["replies"]) >= 40
    for reply in truth["replies"]:
        local = parse_iso(reply["created_at"]).astimezone(LONDON)
        assert local.weekday() < 5 and time(9) <= local.time() <= time(17), local


def test_an_instant_reply_still_waits_for_opening_time() -> None:
    saturday = datetime(2026, 3, 7, 12, tzinfo=UTC)
    shop = _brand(ack_median=timedelta(0), hours=WEEKDAYS_9_TO_5)
    fate = decide_fate(1, shop, "@Acme open?", saturday, LONDON)
    assert fate.ack_at == datetime(2026, 3, 9, 9, tzinfo=UTC)  # Monday 09:00 in London (GMT)


@pytest.mark.parametrize(
    "profile", [{"ack_median": -5}, {"answer_rate": 2}, {"ack_median": "soon"}]
)
def test_bad_profiles_are_refused(profile: dict[str, Any]) -> None:
    sandbox = SandboxServer().start()
    try:
        body = world_body({"name": "Acme", "handles": {"x": "Acme"}, "profile": profile})
        response = requests.put(f"{sandbox.url}/_sandbox/world", json=body, timeout=5)
        assert response.status_code == 400
        assert response.json()["error"].startswith("invalid world: brands[0].profile")
    finally:
        sandbox.stop()
