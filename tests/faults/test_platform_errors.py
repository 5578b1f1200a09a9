"""5xx, timeouts and dropped connections: reads retry with capped exponential backoff and
jitter; a post that failed ambiguously is looked for on our timeline, never blindly retried."""

from __future__ import annotations

from pathlib import Path

import pytest

from mystery.sandbox import SandboxControl, SandboxServer
from mystery.store.store import Store
from mystery.timings.export import timing_rows
from tests.faults.fault_helpers import assert_exact, collect

MENTIONS = "GET /2/users/:id/mentions"
POST = "POST /2/tweets"


def _outcomes(study: Path) -> list[str]:
    with Store.open(study.with_suffix(".db"), create=False) as store:
        return [r[0] for r in store.db.execute(
            "SELECT outcome FROM send_attempts ORDER BY id")]


def test_server_errors_on_reads_are_retried_with_backoff(
    study: Path, sandbox: SandboxServer, control: SandboxControl
) -> None:
    control.add_fault(MENTIONS, 503, times=None, probability=0.3, seed=4)
    control.add_fault(MENTIONS, 500, times=2)
    outcome = collect(study, sandbox)
    assert outcome.result.finished
    fired = sum(control.faults()["fired"].values())
    assert fired > 20
    assert outcome.result.retries == fired
    assert len(outcome.said("polling again in")) == fired
    assert_exact(study, sandbox)


@pytest.mark.parametrize(
    ("fault", "seen"),
    [
        ({"status": 503, "when": "after"}, "X server error"),
        ({"status": 201, "body": "malformed", "when": "after"}, "malformed"),
        ({"status": 200, "body": "empty", "when": "after"}, "malformed"),
        ({"body": "drop", "when": "after"}, "cannot reach X"),
    ],
    ids=["5xx", "malformed", "empty", "dropped"],
)
def test_a_post_made_but_unanswered_is_found_not_posted_again(
    study: Path, sandbox: SandboxServer, control: SandboxControl, fault: dict[str, object],
    seen: str,
) -> None:
    control.add_fault(POST, times=3, **fault)  # type: ignore[arg-type]
    outcome = collect(study, sandbox)
    assert outcome.result.finished
    assert len(outcome.said(seen)) == 3
    assert len(outcome.said("found on our timeline after an interrupted send")) == 3
    assert_exact(study, sandbox)  # each probe posted once, at the time it really went out
    assert _outcomes(study).count("reconciled") == 3
    assert sandbox.stats.snapshot()[POST] == 10


def test_a_post_refused_before_it_was_made_is_sent_again_after_a_check(
    study: Path, sandbox: SandboxServer, control: SandboxControl
) -> None:
    control.add_fault(POST, 502, times=2)
    outcome = collect(study, sandbox)
    assert outcome.result.finished
    assert _outcomes(study)[:3] == ["failed", "failed", "sent"]
    assert sandbox.stats.snapshot()["GET /2/users/:id/tweets"] == 2  # checked before each retry
    assert_exact(study, sandbox)


def test_a_platform_that_never_takes_a_post_gets_a_bounded_number_of_tries(
    study: Path, sandbox: SandboxServer, control: SandboxControl
) -> None:
    control.add_fault(POST, 503, times=None)
    outcome = collect(study, sandbox)
    assert outcome.result.finished
    assert sandbox.stats.snapshot()[POST] == 5 * 10
    with Store.open(study.with_suffix(".db"), create=False) as store:
        rows = timing_rows(store)
        flags = store.flags()
    assert {r["status"] for r in rows} == {"excluded"} and len(rows) == 10
    assert all(r["sent_at"] is None for r in rows)
    assert {(f.kind, f.reason) for f in flags} == {("not_sent", "not sent after 5 failed attempts")}
    assert sandbox.ground_truth()["posts"] == []


def test_timeouts_are_retried_and_a_late_post_is_reconciled(
    study: Path, sandbox: SandboxServer, control: SandboxControl
) -> None:
    control.add_fault(MENTIONS, times=2, body="pass", delay=1.0)
    control.add_fault(POST, times=1, body="pass", delay=1.0, when="after")
    outcome = collect(study, sandbox, timeout=0.3)
    assert outcome.result.finished
    assert len(outcome.said("did not answer GET /2/users/:id/mentions within 0.3 s")) == 2
    assert len(outcome.said("did not answer POST /2/tweets within 0.3 s")) == 1
    assert _outcomes(study).count("reconciled") == 1
    assert_exact(study, sandbox)


def test_dropped_connections_are_retried(
    study: Path, sandbox: SandboxServer, control: SandboxControl
) -> None:
    control.add_fault(MENTIONS, times=None, body="drop", probability=0.2, seed=8)
    outcome = collect(study, sandbox)
    assert outcome.result.finished
    assert outcome.said("cannot reach X for GET /2/users/:id/mentions")
    assert_exact(study, sandbox)


def test_a_platform_failing_at_start_up_is_asked_again_with_a_notice(
    study: Path, sandbox: SandboxServer, control: SandboxControl
) -> None:
    """A 503 (then a dropped connection) while the channel opens is passing trouble, as it
    would be mid-run: the run waits, says so, and goes on; it does not end."""
    control.add_fault("GET /2/users/me", 503, times=1)
    control.add_fault("GET /2/users/me", 200, times=1, body="drop")
    outcome = collect(study, sandbox)
    assert outcome.result.finished
    retries = outcome.said("x: cannot open yet")
    assert len(retries) == 2 and "trying again in 1 s (1 of 4 retries)" in retries[0]
    assert "X server error on GET /2/users/me" in retries[0]
    assert_exact(study, sandbox)
