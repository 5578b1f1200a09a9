"""End to end: the CLI runs a study against the sandbox with real tweepy over loopback HTTP, and
every recorded time equals the sandbox's ground truth to the millisecond."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mystery.cli import app
from mystery.clock import parse_iso, snowflake_time
from mystery.sandbox.server import SandboxServer
from mystery.store.store import Store
from mystery.timings.export import timing_rows

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    for name in ("demo.toml", "demo-brands.csv"):
        shutil.copy(REPO / "studies" / name, tmp_path / name)
    return tmp_path / "demo.toml"


def _seconds(later: str, earlier: datetime) -> float:
    return (parse_iso(later) - earlier).total_seconds()


def test_demo_run_matches_ground_truth(demo: Path, sandbox: SandboxServer) -> None:
    result = CliRunner().invoke(
        app, ["run", str(demo), "--sandbox-url", sandbox.url, "--quiet", "--no-report"]
    )
    assert result.exit_code == 0, result.output
    assert "finished" in result.output
    truth = sandbox.ground_truth()

    # No post was sent twice: one received post per planned probe, each text once.
    posts = truth["posts"]
    assert len(posts) == 66
    assert sorted({p["channel"] for p in posts}) == ["bluesky", "mastodon", "x"]
    assert len({p["text"] for p in posts}) == 66

    with Store.open(demo.with_suffix(".db"), create=False) as store:
        rows = timing_rows(store)
        probes = {p.message_id: p for p in store.probes()}
    assert len(rows) == 66
    by_sent = {(r["brand"], r["sent_at"]): r for r in rows}

    for post in posts:
        probe = probes[post["id"]]
        assert probe.sent_at is not None
        # The probe's time is the platform's, to the ms (on X: the post id's snowflake).
        assert probe.sent_at == parse_iso(post["created_at"])
        if post["channel"] == "x":
            assert probe.sent_at == snowflake_time(post["id"])
        row = by_sent[(post["brand"], probe.sent_at)]
        fate = post["fate"]
        if not fate["answers"]:
            assert row["status"] == "unanswered"
            assert row["ack_seconds"] is None and row["resolution_seconds"] is None
            continue
        assert row["status"] == "answered"
        assert row["ack_seconds"] == _seconds(fate["ack_at"], probe.sent_at)
        assert row["resolution_seconds"] == _seconds(fate["resolution_at"], probe.sent_at)

    # The profiles' never-answered probes are exactly the unanswered ones, and there are some.
    never = {p["id"] for p in posts if not p["fate"]["answers"]}
    unanswered = {probes_id for probes_id, p in probes.items() if p.outcome == "unanswered"}
    assert never == unanswered
    assert 0 < len(never) < 66


def test_rerun_of_a_finished_study_sends_nothing(demo: Path, sandbox: SandboxServer) -> None:
    args = ["run", str(demo), "--sandbox-url", sandbox.url, "--quiet", "--no-report"]
    assert CliRunner().invoke(app, args).exit_code == 0
    first = len(sandbox.ground_truth()["posts"])
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0, again.output
    assert len(sandbox.ground_truth()["posts"]) == first
