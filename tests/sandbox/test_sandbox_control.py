"""The control plane: one world per sandbox, a forward-only clock, ground truth, request counts."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import requests
import tweepy

from mystery.clock import parse_iso
from mystery.errors import SandboxError
from mystery.sandbox import SandboxControl, SandboxServer, WorldSpec
from mystery.sandbox.world import user_id_for
from mystery.study.load import load_study
from tests.sandbox.sandbox_helpers import START, brand, make_client, world_body

REPO = Path(__file__).resolve().parents[2]


def test_putting_the_same_world_again_is_a_no_op(sandbox: SandboxServer) -> None:
    url = f"{sandbox.url}/_sandbox/world"
    first = requests.put(url, json=world_body(), timeout=5)
    assert first.status_code == 201 and first.json()["created"] is True
    sandbox.world.advance_by(timedelta(hours=5))
    again = requests.put(url, json=world_body(), timeout=5)
    assert again.status_code == 200 and again.json()["created"] is False
    assert sandbox.world.now() == parse_iso(START) + timedelta(hours=5)  # the clock is untouched
    accounts = {a["username"]: a for a in again.json()["accounts"]}
    assert accounts["AcmeHelp"] == {
        "id": user_id_for("AcmeHelp"),
        "username": "AcmeHelp",
        "name": "Acme",
        "brand": "Acme",
    }


def test_a_different_world_is_a_conflict(sandbox: SandboxServer) -> None:
    url = f"{sandbox.url}/_sandbox/world"
    requests.put(url, json=world_body(), timeout=5)
    other = requests.put(url, json=world_body(seed=8), timeout=5)
    assert other.status_code == 409
    assert "already holds another world (seed 7" in other.json()["error"]
    assert "restart the sandbox" in other.json()["error"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({**world_body(), "seed": "x"}, "seed:"),
        ({**world_body(), "start": "2026-03-02T09:00:00"}, "start: start needs a time zone"),
        ({**world_body(), "timezone": "Mars/Olympus"}, "timezone: unknown time zone"),
        ({**world_body(), "researcher": {}}, "researcher: researcher needs an x handle"),
        (
            world_body(brand("A", "Same"), brand("B", "same")),
            "handle @same of brand 'B' is already used",
        ),
        ({**world_body(), "colour": "red"}, "colour: Extra inputs are not permitted"),
    ],
)
def test_an_invalid_world_is_refused_with_its_key_path(
    sandbox: SandboxServer, body: object, message: str
) -> None:
    response = requests.put(f"{sandbox.url}/_sandbox/world", json=body, timeout=5)
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_the_clock_moves_forward_only(world: SandboxServer, control: SandboxControl) -> None:
    assert control.now() == parse_iso(START)
    later = parse_iso(START) + timedelta(days=2, milliseconds=5)
    assert control.advance_to(later) == later
    assert control.advance_to(parse_iso(START)) == later  # never back
    response = requests.post(f"{world.url}/_sandbox/clock", json={"advance_by": 60}, timeout=5)
    assert parse_iso(response.json()["now"]) == later + timedelta(minutes=1)
    assert (
        requests.post(
            f"{world.url}/_sandbox/clock", json={"advance_to": "soon"}, timeout=5
        ).status_code
        == 400
    )
    assert (
        requests.post(f"{world.url}/_sandbox/clock", json={"advance_by": -1}, timeout=5).status_code
        == 400
    )


def test_ground_truth_lists_posts_with_fates_and_replies_so_far(
    world: SandboxServer, control: SandboxControl, x: tweepy.Client
) -> None:
    probe = x.create_tweet(text="@AcmeHelp is this the right place?").data["id"]
    truth = control.posts()
    (post,) = truth["posts"]
    assert post["id"] == probe and post["brand"] == "Acme" and post["author"] == "mystery_res"
    assert post["created_at"] == START
    assert truth["replies"] == []  # decided, not yet visible
    control.advance_to(parse_iso(post["fate"]["resolution_at"]))
    replies = control.posts()["replies"]
    assert [r["id"] for r in replies] == post["fate"]["reply_ids"]
    assert {r["kind"] for r in replies} <= {"holding", "answer"} and replies[-1]["kind"] == "answer"
    assert all(
        r["brand"] == "Acme" and r["in_reply_to"] == probe == r["conversation_id"] for r in replies
    )


def test_stats_count_requests_per_route_template(
    world: SandboxServer, control: SandboxControl, me: str, x: tweepy.Client
) -> None:
    control.reset_stats()
    for _ in range(3):
        x.get_users_mentions(me, user_auth=True)
    x.create_tweet(text="@Acme counted?")
    assert control.stats() == {
        "GET /2/users/:id/mentions": 3,
        "POST /2/tweets": 1,
        "GET /_sandbox/stats": 1,
    }


def test_x_routes_wait_for_a_world(sandbox: SandboxServer) -> None:
    client = make_client(sandbox.url)
    with pytest.raises(tweepy.TwitterServerError, match="PUT /_sandbox/world first"):
        client.get_me()
    client.session.close()


def test_unknown_routes_are_404(sandbox: SandboxServer) -> None:
    assert requests.get(f"{sandbox.url}/_sandbox/nothing", timeout=5).status_code == 404
    assert (
        requests.get(
            f"{sandbox.url}/2/spaces", headers={"Authorization": "Bearer t"}, timeout=5
        ).status_code
        == 404
    )
    assert requests.delete(f"{sandbox.url}/_sandbox/world", timeout=5).status_code == 405


def test_the_python_client_reports_conflicts_and_absence(
    sandbox: SandboxServer, control: SandboxControl
) -> None:
    spec = WorldSpec.model_validate(world_body())
    assert control.put_world(spec) is True
    assert control.put_world(spec) is False
    with pytest.raises(SandboxError, match="409"):
        control.put_world(spec.model_copy(update={"seed": 99}))
    with (
        SandboxControl("http://127.0.0.1:9", timeout=1) as nowhere,
        pytest.raises(SandboxError, match="cannot reach"),
    ):
        nowhere.now()


def test_a_world_built_from_the_demo_study_round_trips(
    sandbox: SandboxServer, control: SandboxControl
) -> None:
    loaded = load_study(REPO / "studies" / "demo.toml")
    spec = WorldSpec.from_study(loaded.study, parse_iso(START))
    assert control.put_world(spec) is True
    assert control.put_world(WorldSpec.model_validate(spec.to_body())) is False  # JSON is lossless
    assert len(control.world()["accounts"]) >= len(loaded.study.brands) + 1


def test_a_port_in_use_is_a_clear_error(sandbox: SandboxServer) -> None:
    port = int(sandbox.url.rsplit(":", 1)[1])
    with pytest.raises(SandboxError, match="another sandbox running"):
        SandboxServer(port=port).start()
