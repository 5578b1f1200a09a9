"""A team study in the sandbox: two researcher accounts on X, one runner per account.

The runners take turns on one standalone sandbox (one world, one clock) and one SQLite store,
as two researchers would one after the other on a shared machine. Each probe must go out from
the account its plan names, each account must read its own mentions (its own cursor), every
reply must belong to a probe of the account it answered, every time must equal the sandbox's
ground truth to the millisecond, and the study must finish with nothing sent twice.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path

import frictionless
import pytest
from typer.testing import CliRunner

from mystery.cli import app
from mystery.clock import parse_iso
from mystery.collect.run import run_study
from mystery.errors import SandboxError
from mystery.sandbox import SandboxControl, SandboxServer
from mystery.store.store import Store
from mystery.study.load import load_study
from mystery.timings.export import timing_rows
from tests.rebuilt import assert_settled_and_posted_once_by_its_account
from tests.studybuilder import study_data, write_study

ACCOUNTS = ["shopper_a", "shopper_b"]
STUDY = study_data(
    name="team",
    channels={"x": {"accounts": ACCOUNTS, "endpoint": "sandbox", "poll_every": "20m"}},
    questions=[{"id": "delivery", "text": "Hi {brand}, do you deliver on Saturdays?"},
               {"id": "hours", "text": "Hello {brand}, what time are you open until today?"}],
    schedule={"start": date(2026, 3, 2), "end": date(2026, 3, 4), "probes_per_brand": 2,
              "min_gap": "4h", "seed": 5},
    brands=[{"name": "Acme", "handles": {"x": "AcmeHelp"}, "profile": "quick"},
            {"name": "Globex", "handles": {"x": "GlobexCares"}, "profile": "quick"},
            {"name": "Initech", "handles": {"x": "InitechCS"}, "profile": "silent"}],
    sandbox={"seed": 2, "profiles": {"quick": {"ack_median": "30m", "resolve_after": "1h"},
                                     "silent": {"answer_rate": 0.0}}},
)


def _take_turns(path: Path, url: str, control: SandboxControl) -> int:
    """Each account's runner in turn, up to the same instant, then the clock moves on."""
    finished: set[str] = set()
    turns = 0
    while finished != set(ACCOUNTS):
        turns += 1
        assert turns < 200, "the team study does not finish"
        step = control.now() + timedelta(hours=2)
        for account in ACCOUNTS:
            _, result = run_study(path, sandbox_url=url, account=account, until=step)
            if result.finished:
                finished.add(account)
        if control.now() < step:
            control.advance_to(step)
    return turns


def test_two_accounts_two_runners_one_sandbox(tmp_path: Path, sandbox: SandboxServer,
                                              control: SandboxControl,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # results/ is written under the test's folder
    path = write_study(tmp_path, STUDY, "team.toml")
    _take_turns(path, sandbox.url, control)

    truth = control.posts()
    with Store.open(path.with_suffix(".db"), create=False) as store:
        probes = store.probes()
        assert_settled_and_posted_once_by_its_account(truth, probes)
        assert Counter(p.account for p in probes) == {"shopper_a": 3, "shopper_b": 3}
        # Each brand heard from both accounts.
        assert all({p.account for p in probes if p.brand == b} == set(ACCOUNTS)
                   for b in ("Acme", "Globex", "Initech"))
        # Each account polled its own mentions.
        assert {r[0] for r in store.db.execute("SELECT account FROM cursors")} == set(ACCOUNTS)
        # Every reply is its probe's account's, and at the platform's own time.
        replies = store.replies()
        by_id = {p.id: p for p in probes}
        asked = {r["id"]: r for r in truth["replies"]}
        assert {r.message_id for r in replies} == set(asked)  # no reply lost
        for reply in replies:
            assert asked[reply.message_id]["text"].startswith(
                f"@{by_id[reply.probe_id].account} ")
            assert reply.created_at == parse_iso(asked[reply.message_id]["created_at"])
        rows = timing_rows(store)
    sent = {p["id"]: parse_iso(p["created_at"]) for p in truth["posts"]}
    assert sorted(r["sent_at"] for r in rows if r["sent_at"]) == sorted(sent.values())
    assert Counter(r["status"] for r in rows) == {"answered": 4, "unanswered": 2}

    # What a researcher sees: each runner reports every account's standing, then the report
    # names the accounts in its method note (and never a credential).
    result = CliRunner().invoke(app, ["run", str(path), "--sandbox-url", sandbox.url,
                                      "--account", "shopper_b", "--quiet", "--no-report"])
    assert result.exit_code == 0, result.output
    for account in ACCOUNTS:
        assert f"team: x as {account}: 3/3 probes sent" in result.output
    result = CliRunner().invoke(app, ["report", str(path)])
    assert result.exit_code == 0, result.output
    summary = (tmp_path / "results" / "team" / "summary.md").read_text(encoding="utf-8")
    assert ("Researcher accounts (x: shopper\\_a, shopper\\_b): each brand's probes were "
            "dealt") in summary  # names escaped as Markdown
    info = json.loads((tmp_path / "results" / "team" / "study.json").read_text())
    assert info["accounts"] == {"x": ACCOUNTS}
    per_account = summary.split("## Per account", 1)[1].split("##", 1)[0]
    for account in ACCOUNTS:
        assert f"| x | {account.replace('_', chr(92) + '_')} | " in per_account
    result = CliRunner().invoke(app, ["export", str(path)])
    assert result.exit_code == 0, result.output
    csv = (tmp_path / "results" / "team" / "timings.csv").read_text(encoding="utf-8")
    lines = csv.splitlines()
    assert lines[0].endswith(",cutoff_seconds,account")
    assert Counter(line.rsplit(",", 1)[1] for line in lines[1:]) == {"shopper_a": 3,
                                                                    "shopper_b": 3}
    report = frictionless.validate(tmp_path / "results" / "team" / "datapackage.json")
    assert report.valid, report.flatten(["rowNumber", "fieldName", "type", "note"])


def test_a_team_study_in_the_sandbox_needs_a_standalone_sandbox(tmp_path: Path) -> None:
    path = write_study(tmp_path, STUDY, "team.toml")
    result = CliRunner().invoke(app, ["run", str(path), "--account", "shopper_a", "--quiet"])
    assert result.exit_code == 1
    assert "channels.x lists several accounts in the sandbox" in result.output
    assert "--sandbox-url" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["team.toml"]
    assert load_study(path).study.channels["x"].account_names == tuple(ACCOUNTS)


GUARDED = study_data(
    name="team-guarded", cutoff="1d",
    channels={"x": {"accounts": ACCOUNTS, "endpoint": "sandbox", "poll_every": "20m",
                    "safeguards": True, "daily_cap": 2}},
    questions=STUDY["questions"],
    schedule={"start": date(2026, 3, 2), "end": date(2026, 3, 3), "probes_per_brand": 2,
              "min_gap": "1h", "seed": 1},
    brands=[{"name": f"B{i}", "handles": {"x": f"Brand{i}"}, "profile": "slow"}
            for i in range(4)],
    sandbox={"profiles": {"slow": {"ack_median": "3h", "resolve_after": "2h"}}},
)


def test_safeguards_hold_per_account_and_per_brand(tmp_path: Path, sandbox: SandboxServer,
                                                   control: SandboxControl) -> None:
    """The daily cap is each account's; one open probe per brand and channel, and min_gap,
    hold for a brand whichever account asks it."""
    path = write_study(tmp_path, GUARDED, "guarded.toml")
    _take_turns(path, sandbox.url, control)
    with Store.open(path.with_suffix(".db"), create=False) as store:
        probes = store.probes()
        settled = dict(store.db.execute("SELECT id, settled_at FROM probes"))
    assert all(p.sent_at is not None for p in probes)  # held, then sent: none dropped

    def most_in_a_day(sends: list[datetime]) -> int:
        sends = sorted(sends)
        return max(sum(1 for t in sends[i:] if t < s + timedelta(hours=24))
                   for i, s in enumerate(sends))

    for account in ACCOUNTS:
        assert most_in_a_day([p.sent_at for p in probes
                              if p.account == account and p.sent_at]) <= 2
    assert most_in_a_day([p.sent_at for p in probes if p.sent_at]) > 2  # per account, not per x
    for brand in {p.brand for p in probes}:
        first, second = sorted((p for p in probes if p.brand == brand),
                               key=lambda p: p.sent_at or 0)
        assert first.account != second.account
        assert first.sent_at and second.sent_at
        assert second.sent_at - first.sent_at >= timedelta(hours=1)
        assert second.sent_at.isoformat() >= settled[first.id][:19]  # first was settled


def test_an_account_does_not_start_on_a_restarted_sandbox(tmp_path: Path,
                                                          sandbox: SandboxServer) -> None:
    """shopper_a's probes went to one world; shopper_b's runner, pointed at a fresh sandbox,
    is refused (its replies could never be compared with the same brands), even though
    shopper_b itself has sent nothing yet."""
    path = write_study(tmp_path, STUDY, "team.toml")
    _, result = run_study(path, sandbox_url=sandbox.url, account="shopper_a")
    assert result.finished
    with SandboxServer() as restarted, pytest.raises(SandboxError,
                                                      match="not the world this study's store"):
        run_study(path, sandbox_url=restarted.url, account="shopper_b")
    with Store.open(path.with_suffix(".db"), create=False) as store:
        assert {p.state for p in store.probes() if p.account == "shopper_b"} == {"planned"}
