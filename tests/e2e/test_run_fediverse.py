"""End to end on Mastodon and on Bluesky: the CLI runs a study on that channel alone against a
standalone sandbox, through the real channel code over loopback HTTP, and every recorded time
equals the sandbox's ground truth to the millisecond; the unanswered probes are exactly those
whose brand never answers; a post whose answer is lost is found again, never sent twice."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mystery.cli import app
from mystery.clock import parse_iso
from mystery.sandbox.faults import Fault
from mystery.sandbox.server import SandboxServer
from mystery.store.rows import ProbeRow
from mystery.store.store import Store
from mystery.timings.export import timing_rows
from tests.studybuilder import study_data, write_study

CUTOFF = timedelta(days=2)

HANDLES = {
    "mastodon": ("mystery_res", {
        "Acme": ("help@acme.example", "care@acme.example"),
        "Globex": ("support@globex.example", None),
        "Initech": ("hello@initech.example", None),
        "Umbrella": ("service@umbrella.example", None),
    }),
    "bluesky": ("mystery-res.bsky.social", {
        "Acme": ("acme.example", "acme-care.bsky.social"),
        "Globex": ("globex.bsky.social", None),
        "Initech": ("initech.example", None),
        "Umbrella": ("umbrella.bsky.social", None),
    }),
}  # fmt: skip
PROFILES = {"Acme": "thread", "Globex": "patchy", "Initech": "office", "Umbrella": "silent"}


def fedi_study(channel: str) -> dict[str, Any]:
    """4 brands × 2 probes on ``channel``: a thread with an alias, patchy, office hours, silent."""
    account, handles = HANDLES[channel]
    brands: list[dict[str, Any]] = []
    for name, (handle, alias) in handles.items():
        brands.append({"name": name, "handles": {channel: handle}})
        if alias:
            brands[-1]["aliases"] = {channel: [alias]}
        brands[-1]["profile"] = PROFILES[name]
    return study_data(
        name="fedi",
        channels={channel: {"account": account, "endpoint": "sandbox", "poll_every": "30m"}},
        questions=[
            {"id": "delivery", "text": "Hi {brand}, do you deliver to Zürich? 📦 Merci!"},
            {"id": "hours", "text": "Hello {brand}, what time are you open until today?"},
        ],
        schedule={"start": date(2026, 3, 2), "end": date(2026, 3, 3), "probes_per_brand": 2,
                  "min_gap": "1d", "seed": 5},
        brands=brands,
        sandbox={"seed": 11, "profiles": {
            "thread": {"ack_median": "20m", "resolve_after": "1h", "holding_share": 0.9,
                       "alias_share": 0.5},
            "patchy": {"answer_rate": 0.5, "ack_median": "2h"},
            "office": {"ack_median": "40m", "resolve_after": "30m", "holding_share": 0.5,
                       "hours": [{"days": "mon-fri", "start": "09:00", "end": "17:30"}]},
            "silent": {"answer_rate": 0.0},
        }},
    )


def run(tmp_path: Path, channel: str, sandbox: SandboxServer) -> Path:
    study = write_study(tmp_path, fedi_study(channel), f"{channel}.toml")
    result = CliRunner().invoke(
        app, ["run", str(study), "--sandbox-url", sandbox.url, "--quiet", "--no-report"]
    )
    assert result.exit_code == 0, result.output
    assert "finished" in result.output
    return study


def _within(at: str | None, sent: datetime) -> float | None:
    """Seconds from ``sent`` to ``at``, when that lies within the cutoff."""
    if at is None or parse_iso(at) - sent > CUTOFF:
        return None
    return (parse_iso(at) - sent).total_seconds()


def times_match(study: Path, posts: list[dict[str, Any]]) -> dict[str | None, ProbeRow]:
    """Every probe's sent, acknowledged and resolved times equal the ground truth to the ms;
    returns the probes by message id."""
    with Store.open(study.with_suffix(".db"), create=False) as store:
        rows = {(r["brand"], r["sent_at"]): r for r in timing_rows(store)}
        probes = {p.message_id: p for p in store.probes()}
    assert len(rows) == len(posts)
    for post in posts:
        probe = probes[post["id"]]
        assert probe.channel == post["channel"]
        assert probe.sent_at == parse_iso(post["created_at"])  # the platform's time, to the ms
        row = rows[(post["brand"], probe.sent_at)]
        fate = post["fate"]
        ack = _within(fate["ack_at"], probe.sent_at)
        assert row["ack_seconds"] == ack, post
        assert row["resolution_seconds"] == _within(fate["resolution_at"], probe.sent_at), post
        assert row["status"] == ("answered" if ack is not None else "unanswered")
    return probes


def check_against_truth(study: Path, truth: dict[str, Any], channel: str) -> None:
    posts = [p for p in truth["posts"] if p["channel"] == channel]
    assert len(posts) == 8 and len({p["text"] for p in posts}) == 8  # none sent twice
    assert all(p["text"].startswith("@") for p in posts)
    probes = times_match(study, posts)
    never = {p["id"] for p in posts if not p["fate"]["answers"]}
    unanswered = {mid for mid, p in probes.items() if p.outcome == "unanswered"}
    assert never == unanswered and 0 < len(never) < 8
    # The replies came from the brand and its alias, and a holding message was answered in
    # its own thread: the channel followed threads, not just direct replies to the probe.
    replies = [r for r in truth["replies"] if r["channel"] == channel]
    assert {r["author"] for r in replies} >= set(HANDLES[channel][1]["Acme"])
    assert any(r["in_reply_to"] not in probes for r in replies)


def test_a_mastodon_study_matches_ground_truth(tmp_path: Path, sandbox: SandboxServer) -> None:
    study = run(tmp_path, "mastodon", sandbox)
    check_against_truth(study, sandbox.ground_truth(), "mastodon")
    stats = sandbox.stats.snapshot()
    assert stats["GET /api/v1/statuses/:id/context"] >= 1  # answers to holding messages
    assert stats["GET /api/v2/search"] == 4  # each brand resolved once, before its first post


def test_a_bluesky_study_matches_ground_truth(tmp_path: Path, sandbox: SandboxServer) -> None:
    study = run(tmp_path, "bluesky", sandbox)
    check_against_truth(study, sandbox.ground_truth(), "bluesky")
    stats = sandbox.stats.snapshot()
    # One login for the whole run; the two-hour access tokens were refreshed instead.
    assert stats["POST /xrpc/com.atproto.server.createSession"] == 1
    assert stats["POST /xrpc/com.atproto.server.refreshSession"] >= 20
    # A finished study run again sends nothing (and does not even log in).
    run(tmp_path, "bluesky", sandbox)
    assert len(sandbox.ground_truth()["posts"]) == 8
    assert sandbox.stats.snapshot()["POST /xrpc/com.atproto.server.createSession"] == 1


@pytest.mark.parametrize(
    ("channel", "route"),
    [
        ("mastodon", "POST /api/v1/statuses"),
        ("bluesky", "POST /xrpc/com.atproto.repo.createRecord"),
    ],
)
def test_a_post_whose_answer_is_lost_is_found_not_sent_again(
    tmp_path: Path, sandbox: SandboxServer, channel: str, route: str
) -> None:
    # The second and fifth posts are made, but the client hears a 503 instead.
    faults = sandbox.app.context.faults
    faults.add(Fault(route=route, status=503, when="after", skip=1))
    faults.add(Fault(route=route, status=503, when="after", skip=3))
    study = run(tmp_path, channel, sandbox)
    truth = sandbox.ground_truth()
    check_against_truth(study, truth, channel)
    with Store.open(study.with_suffix(".db"), create=False) as store:
        how = [a for p in store.probes() for a in store.attempts(p.id)]
    assert sum(1 for a in how if "reconciled" in str(a)) == 2


MIXED = study_data(
    name="mixed",
    channels={"x": {"account": "mystery_res", "poll_every": "30m"},
              "mastodon": {"account": "mystery_res", "poll_every": "30m"},
              "bluesky": {"account": "mystery-res.bsky.social", "poll_every": "30m"}},
    questions=[{"id": "q", "text": "Hi {brand}, do you deliver to Zürich? 📦"}],
    schedule={"start": date(2026, 3, 2), "end": date(2026, 3, 4), "probes_per_brand": 1,
              "min_gap": "4h", "seed": 5},
    brands=[
        {"name": "Acme", "handles": {"x": "Acme", "mastodon": "help@acme.example",
                                     "bluesky": "acme.example"}, "profile": "p"},
        {"name": "Globex", "handles": {"x": "Globex", "mastodon": "support@globex.example",
                                       "bluesky": "globex.bsky.social"}, "profile": "p"},
    ],
    sandbox={"seed": 2, "profiles": {
        "p": {"ack_median": "30m", "resolve_after": "1h", "holding_share": 0.5},
    }},
)


def test_x_mastodon_and_bluesky_share_one_world_and_one_clock(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    study = write_study(tmp_path, MIXED, "mixed.toml")
    result = CliRunner().invoke(
        app, ["run", str(study), "--sandbox-url", sandbox.url, "--quiet", "--no-report"]
    )
    assert result.exit_code == 0, result.output
    posts = sandbox.ground_truth()["posts"]
    assert sorted(p["channel"] for p in posts) == ["bluesky"] * 2 + ["mastodon"] * 2 + ["x"] * 2
    times_match(study, posts)
