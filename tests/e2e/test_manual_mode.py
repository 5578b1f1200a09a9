"""X in ``manual`` mode: a person posts, the runner finds the post and measures from it.

The test plays the researcher. When ``mystery run`` shows a due probe, the researcher posts
its text on X by hand (through the sandbox's control plane, some minutes later), except for
one probe they miss once and one they never post. Every recorded send time must be the
platform's time of the researcher's post, every reply time must equal the sandbox's ground
truth to the millisecond, the runner itself must post nothing, a missed probe must come back
at a slot the plan's rules allow, and a probe never posted must end excluded, not dropped.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from mystery.cli import app
from mystery.clock import parse_iso
from mystery.collect.connect import world_start
from mystery.collect.handoff import DueProbe
from mystery.collect.run import run_study
from mystery.sandbox import SandboxControl, SandboxServer
from mystery.sandbox.spec import WorldSpec
from mystery.store.store import Store
from mystery.study.load import load_study
from mystery.study.plan import make_plan
from mystery.timings.export import timing_rows
from tests.studybuilder import study_data, write_study

GRACE = timedelta(hours=1)
CUTOFF = timedelta(days=2)

STUDY = study_data(
    name="by-hand",
    channels={"x": {"account": "mystery_res", "endpoint": "sandbox", "mode": "manual",
                    "grace": "1h", "poll_every": "10m"}},
    questions=[{"id": "delivery", "text": "Hi {brand}, do you deliver on Saturdays?"},
               {"id": "hours", "text": "Hello {brand}, what time are you open until today?"}],
    schedule={"start": date(2026, 3, 2), "end": date(2026, 3, 13), "probes_per_brand": 2,
              "min_gap": "1d", "seed": 3},
    brands=[{"name": "Acme", "handles": {"x": "AcmeHelp"}, "profile": "quick"},
            {"name": "Globex", "handles": {"x": "GlobexCares"}, "profile": "slow"},
            {"name": "Initech", "handles": {"x": "InitechCS"}, "profile": "quick"},
            {"name": "Umbrella", "handles": {"x": "UmbrellaCo"}, "profile": "silent"}],
    sandbox={"seed": 4, "profiles": {
        "quick": {"ack_median": "15m", "resolve_after": "40m", "holding_share": 0.5},
        "slow": {"ack_median": "5h"},
        "silent": {"answer_rate": 0.0},
    }},
)


def _write(tmp_path: Path) -> Path:
    return write_study(tmp_path, STUDY, "by-hand.toml")


def _prepare(path: Path, control: SandboxControl) -> None:
    study = load_study(path).study
    control.put_world(WorldSpec.from_study(study, world_start(study)))


def test_the_runner_finds_posts_made_by_hand_and_times_them_from_the_platform(
    tmp_path: Path, sandbox: SandboxServer, control: SandboxControl,
) -> None:
    path = _write(tmp_path)
    _prepare(path, control)
    plan = make_plan(load_study(path).study)
    missed_once, never = plan[2].id, plan[5].id
    rng = random.Random(9)
    shown: list[DueProbe] = []
    posted: dict[str, dict[str, str]] = {}  # probe id -> the researcher's post

    def researcher(due: DueProbe) -> None:
        """Reads the due probe and posts its text by hand a few minutes later."""
        shown.append(due)
        assert due.grace_until is not None and due.link is not None
        assert due.link.startswith("https://x.com/intent/post?text=%40")
        if due.probe_id == never or (due.probe_id == missed_once
                                     and sum(d.probe_id == missed_once for d in shown) == 1):
            return
        delay = timedelta(minutes=rng.randint(0, 50), seconds=rng.randint(0, 59))
        posted[due.probe_id] = control.post_as_researcher(due.text, at=control.now() + delay)

    notices: list[str] = []
    _, result = run_study(path, sandbox_url=sandbox.url, on_due=researcher,
                          on_notice=notices.append)
    assert result.finished, notices

    truth = sandbox.ground_truth()
    stats = sandbox.stats.snapshot()
    assert stats.get("POST /2/tweets", 0) == 0  # the runner posted nothing itself
    fates = {p["id"]: p["fate"] for p in truth["posts"]}
    with Store.open(path.with_suffix(".db"), create=False) as store:
        probes = {p.id: p for p in store.probes()}
        rows = {r["sent_at"]: r for r in timing_rows(store) if r["sent_at"]}
        attempts = {p: [a[1] for a in store.attempts(p)] for p in probes}
        flags = {f.probe_id: f.kind for f in store.flags()}

    assert set(posted) == {p.id for p in plan} - {never}
    for probe_id, post in posted.items():
        probe = probes[probe_id]
        assert probe.message_id == post["id"]
        assert probe.sent_at == parse_iso(post["created_at"])  # the platform's time, to the ms
        fate = fates[post["id"]]
        row = rows[probe.sent_at]
        assert row["ack_seconds"] == _within(fate["ack_at"], probe.sent_at), probe_id
        assert row["resolution_seconds"] == _within(fate["resolution_at"], probe.sent_at)
        assert attempts[probe_id][-1] == "manual"

    # Missed once: shown, not posted within the grace window, moved to a later slot in the
    # send windows at least min_gap from the brand's other probe, shown again, posted.
    first = next(d for d in shown if d.probe_id == missed_once)
    again = [d for d in shown if d.probe_id == missed_once][1]
    assert attempts[missed_once] == ["missed", "manual"]
    assert again.planned_at >= first.planned_at + GRACE
    other = next(p for p in probes.values()
                 if p.brand == probes[missed_once].brand and p.id != missed_once)
    assert other.sent_at is not None
    assert abs(again.planned_at - other.sent_at) >= timedelta(days=1)
    local = again.planned_at.astimezone(load_study(path).study.zone)
    assert local.weekday() < 5 and 9 <= local.hour < 17
    # Never posted: missed until the schedule had no slot left, then excluded with a flag.
    assert probes[never].outcome == "excluded" and flags[never] == "missed"
    assert set(attempts[never]) == {"missed"} and len(attempts[never]) >= 2
    assert any(f"{missed_once}: not posted within the grace window" in n for n in notices)


def test_mystery_sent_records_a_post_whose_text_was_edited(
    tmp_path: Path, sandbox: SandboxServer, control: SandboxControl,
) -> None:
    path = _write(tmp_path)
    _prepare(path, control)
    first = make_plan(load_study(path).study)[0]
    handle = {"Acme": "AcmeHelp", "Globex": "GlobexCares", "Initech": "InitechCS",
              "Umbrella": "UmbrellaCo"}[first.brand]
    # The researcher rewords the question, so the runner cannot find it by its text.
    edited = control.post_as_researcher(f"@{handle} {first.text} Thanks!",
                                        at=first.planned_at + timedelta(minutes=3))
    control.advance_to(first.planned_at + timedelta(minutes=5))
    cli = CliRunner()
    args = ["run", str(path), "--sandbox-url", sandbox.url, "--quiet", "--no-report"]
    once = cli.invoke(app, [*args, "--once"])
    assert once.exit_code == 0, once.output
    assert f"{first.id} is due on x: post it yourself" in once.output
    assert f"mystery sent {path} {first.id}" in once.output

    url = f"https://x.com/mystery_res/status/{edited['id']}"
    wrong = cli.invoke(app, ["sent", str(path), first.id, "https://example.com/post/1"])
    assert wrong.exit_code == 1 and "is not the address of a x post" in wrong.output
    noted = cli.invoke(app, ["sent", str(path), first.id, url])
    assert noted.exit_code == 0, noted.output
    done = cli.invoke(app, args)
    assert done.exit_code == 0, done.output
    assert f"{first.id}: posted by hand at" in done.output
    with Store.open(path.with_suffix(".db"), create=False) as store:
        probe = store.probes_by_id([first.id])[0]
        assert probe.message_id == edited["id"]
        assert probe.sent_at == parse_iso(edited["created_at"])
        assert [a[1] for a in store.attempts(first.id)] == ["claimed"]
    again = cli.invoke(app, ["sent", str(path), first.id, url])
    assert again.exit_code == 1 and "already recorded as sent" in again.output


def _within(at: Any, sent: Any) -> float | None:
    if at is None or parse_iso(at) - sent > CUTOFF:
        return None
    return float((parse_iso(at) - sent).total_seconds())


def test_manual_mode_in_the_in_process_sandbox_is_refused_before_any_file(
    tmp_path: Path,
) -> None:
    path = _write(tmp_path)
    result = CliRunner().invoke(app, ["run", str(path), "--quiet"])
    assert result.exit_code == 1
    assert "mode is 'manual' on the sandbox" in result.output and "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["by-hand.toml"]
