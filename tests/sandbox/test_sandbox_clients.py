"""Contract: unmodified third-party clients talk to the sandbox as to the real service.

Why other people's clients and not only ours: mystery's channels were written against the
sandbox, so they cannot show where the sandbox drifts from the platforms; Mastodon.py and the
atproto SDK were written against the real Mastodon and the reference PDS. Each test logs in, posts
a probe with a mention, moves the virtual clock to the brand's answer through the control plane,
reads the answer from the notifications, and fetches the probe back, with the client as it ships.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import pytest
from atproto import Client, client_utils, get_jwt_payload, models
from mastodon import Mastodon

from mystery.clock import parse_iso
from mystery.sandbox import SandboxControl, SandboxServer, WorldSpec

START = "2026-03-02T09:00:00.000Z"
"""A Monday morning: the brand is open and answers within its acknowledgement latency."""

WORLD = WorldSpec.model_validate({
    "seed": 11,
    "start": START,
    "timezone": "Europe/London",
    "researcher": {"x": "mystery_res", "mastodon": "mystery_res",
                   "bluesky": "mystery-res.bsky.social"},
    "brands": [{
        "name": "Acme",
        "handles": {"x": "Acme", "mastodon": "help@acme.example", "bluesky": "acme.example"},
        "profile": {"ack_median": 600, "ack_spread": 0.5, "holding_share": 0.0},
    }],
})  # fmt: skip


def _fate(control: SandboxControl) -> dict[str, Any]:
    """The brand's decided answer to the only probe, from the ground truth."""
    (post,) = control.posts()["posts"]
    fate: dict[str, Any] = post["fate"]
    assert fate["ack_at"] is not None, "the world's brand should answer"
    return fate


# -- Mastodon.py ----------------------------------------------------------------------------


@pytest.mark.parametrize("check", ["none", "created"])
def test_mastodon_py_logs_in_posts_a_mention_and_reads_the_brands_reply(
    sandbox: SandboxServer, control: SandboxControl, check: str, request: pytest.FixtureRequest
) -> None:
    """``created`` checks the version in the constructor, ``none`` on first need (here:
    ``verify_minimum_version``); either way Mastodon.py reads ``/api/v1/instance/`` and
    ``/api/v2/instance/``, trailing slash included."""
    control.put_world(WORLD)
    api = Mastodon(access_token="any-token", api_base_url=sandbox.url, version_check_mode=check)
    request.addfinalizer(api.session.close)
    assert api.verify_minimum_version("4.0.0")
    assert (api.mastodon_major, api.mastodon_minor, api.mastodon_api_version) == (4, 3, 2)

    me = api.account_verify_credentials()
    assert me.acct == "mystery_res"
    probe = api.status_post("@help@acme.example my parcel never arrived, can you help?")
    assert [m.acct for m in probe.mentions] == ["help@acme.example"]
    assert probe.account.id == me.id
    assert api.notifications(types=["mention"]) == []  # decided, not yet visible

    fate = _fate(control)
    control.advance_to(parse_iso(fate["ack_at"]))
    (note,) = api.notifications(types=["mention"])
    assert note.type == "mention"
    assert note.account.acct == "help@acme.example"
    assert str(note.status.in_reply_to_id) == str(probe.id)
    assert note.status.created_at == parse_iso(fate["ack_at"])
    assert str(note.status.id) == fate["reply_ids"][0]

    fetched = api.status(probe.id)
    assert (fetched.id, fetched.content) == (probe.id, probe.content)


@pytest.mark.parametrize("path", ["/api/v1/instance", "/api/v2/instance"])
@pytest.mark.parametrize("slash", ["", "/"])
def test_both_instance_endpoints_answer_with_or_without_a_trailing_slash(
    sandbox: SandboxServer, control: SandboxControl, path: str, slash: str
) -> None:
    control.put_world(WORLD)
    response = httpx.get(f"{sandbox.url}{path}{slash}")
    assert response.status_code == 200
    assert response.json()["version"] == "4.3.0"


def test_the_bare_api_prefix_is_still_answered_in_mastodons_words(
    sandbox: SandboxServer, control: SandboxControl
) -> None:
    control.put_world(WORLD)
    response = httpx.get(f"{sandbox.url}/api/")
    assert (response.status_code, response.json()) == (404, {"error": "Record not found"})


# -- the atproto SDK ------------------------------------------------------------------------


@pytest.fixture
def bsky(sandbox: SandboxServer, control: SandboxControl) -> Iterator[Client]:
    control.put_world(WORLD)
    client = Client(base_url=f"{sandbox.url}/xrpc")
    yield client
    client.request.close()


def test_session_tokens_are_jwts_with_the_reference_pds_claims(
    bsky: Client, control: SandboxControl
) -> None:
    """The SDK decodes (without verifying) what the PDS issues; the times are the sandbox's."""
    session = bsky.com.atproto.server.create_session(
        models.ComAtprotoServerCreateSession.Data(
            identifier="mystery-res.bsky.social", password="app-password"
        )
    )
    now = int(control.now().timestamp())
    access, refresh = get_jwt_payload(session.access_jwt), get_jwt_payload(session.refresh_jwt)
    assert access.sub == refresh.sub == session.did
    assert (access.scope, refresh.scope) == ("com.atproto.appPass", "com.atproto.refresh")
    assert access.iat == refresh.iat == now
    assert access.exp == now + 2 * 3600
    assert refresh.exp == now + 90 * 24 * 3600
    assert session.access_jwt != session.refresh_jwt


def test_the_atproto_sdk_logs_in_posts_a_mention_and_reads_the_brands_reply(
    bsky: Client, control: SandboxControl
) -> None:
    me = bsky.login("mystery-res.bsky.social", "app-password")  # then app.bsky.actor.getProfile
    assert me is not None and me.handle == "mystery-res.bsky.social"
    brand = bsky.resolve_handle("acme.example").did
    text = client_utils.TextBuilder().mention("@acme.example", brand).text(" parcel lost?")
    probe = bsky.send_post(text)  # com.atproto.repo.createRecord with a mention facet
    assert bsky.app.bsky.notification.list_notifications().notifications == []

    fate = _fate(control)
    answered = parse_iso(fate["ack_at"])
    control.advance_to(answered + timedelta(hours=3))  # past the access token's two hours
    (note,) = bsky.app.bsky.notification.list_notifications(
        models.AppBskyNotificationListNotifications.Params(reasons=["reply"])
    ).notifications
    assert (note.reason, note.reason_subject) == ("reply", probe.uri)
    assert note.author.handle == "acme.example"
    assert note.record.reply is not None and note.record.reply.parent.uri == probe.uri
    assert parse_iso(note.indexed_at) == answered

    (post,) = bsky.get_posts([probe.uri]).posts
    assert post.record.text == "@acme.example parcel lost?"
    assert post.record.facets[0].features[0].did == brand
    thread = bsky.get_post_thread(probe.uri).thread
    assert thread.post.uri == probe.uri
    assert [r.post.uri for r in thread.replies] == [note.uri]


# -- rate-limit resets and Date: one clock --------------------------------------------------

MID_WINDOW = timedelta(minutes=7, seconds=30)
"""Into a 15-minute window, so 450 seconds are left of it."""


def _bluesky_token(url: str) -> str:
    session = httpx.post(
        f"{url}/xrpc/com.atproto.server.createSession",
        json={"identifier": "mystery-res.bsky.social", "password": "app-password"},
    )
    token: str = session.json()["accessJwt"]
    return token


def _reset(platform: str, headers: httpx.Headers) -> datetime:
    if platform == "mastodon":
        return parse_iso(headers["X-RateLimit-Reset"])
    name = "x-rate-limit-reset" if platform == "x" else "RateLimit-Reset"
    return datetime.fromtimestamp(int(headers[name]), tz=UTC)


@pytest.mark.parametrize(
    ("platform", "path"),
    [
        ("x", "/2/users/me"),
        ("mastodon", "/api/v1/accounts/verify_credentials"),
        ("bluesky", "/xrpc/app.bsky.notification.listNotifications"),
    ],
)
def test_a_reset_is_as_far_from_the_date_header_as_the_window_has_left(
    sandbox: SandboxServer, control: SandboxControl, platform: str, path: str
) -> None:
    """A client that measures the reset against the server's clock (``Date``) waits exactly
    the rest of the window; both are the virtual clock's, whatever the wall clock says."""
    control.put_world(WORLD)
    token = _bluesky_token(sandbox.url) if platform == "bluesky" else "any-token"
    now = control.advance_to(parse_iso(START) + MID_WINDOW)
    response = httpx.get(sandbox.url + path, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    date = parsedate_to_datetime(response.headers["Date"])
    assert date == now
    assert (_reset(platform, response.headers) - date).total_seconds() == 450


def test_mastodon_py_would_wait_for_what_is_left_of_the_window(
    sandbox: SandboxServer, control: SandboxControl, request: pytest.FixtureRequest
) -> None:
    """Mastodon.py moves ``X-RateLimit-Reset`` onto its own clock by ``time.time() - Date``
    (its ``ratelimit_method="wait"`` then sleeps until it)."""
    control.put_world(WORLD)
    control.advance_to(parse_iso(START) + MID_WINDOW)
    api = Mastodon(access_token="any-token", api_base_url=sandbox.url)
    request.addfinalizer(api.session.close)
    api.account_verify_credentials()
    assert api.ratelimit_reset is not None, "the reset was read as already past"
    assert api.ratelimit_reset - time.time() == pytest.approx(450, abs=5)
