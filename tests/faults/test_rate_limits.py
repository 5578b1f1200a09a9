"""429: wait until the reset the platform names (a notice, a jump on the virtual clock), never
hammer; and still end with the exact times."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from mystery.sandbox import SandboxControl, SandboxServer
from mystery.sandbox.limits import WINDOW_SECONDS
from mystery.store.store import Store
from tests.faults.fault_helpers import assert_exact, collect, write_study

MENTIONS = "GET /2/users/:id/mentions"


def test_polls_over_the_limit_wait_for_the_reset_and_never_hammer(
    tmp_path: Path, sandbox: SandboxServer, control: SandboxControl
) -> None:
    study = write_study(tmp_path, poll_every="4m", cutoff="1d")  # 4 polls a window; 2 allowed
    control.enforce_rate_limits(True, {MENTIONS: 2})
    outcome = collect(study, sandbox)
    assert outcome.result.finished
    refused = control.rate_limits()["refused"].get(MENTIONS, 0)
    served = sandbox.stats.snapshot()[MENTIONS] - refused
    assert refused > 10
    # One refusal per window at most: after a 429 the runner waits for the next window.
    assert refused <= served / 2 + 1
    waits = outcome.said("rate limited while polling; waiting until")
    assert len(waits) == refused
    for notice in waits:
        until = datetime.strptime(notice.split("waiting until ")[1][:19], "%Y-%m-%d %H:%M:%S")
        assert until.replace(tzinfo=UTC).timestamp() % WINDOW_SECONDS == 0  # the named reset
    assert_exact(study, sandbox)


def test_a_refused_post_goes_out_once_at_the_reset(
    study: Path, sandbox: SandboxServer, control: SandboxControl
) -> None:
    control.add_fault("POST /2/tweets", 429)
    outcome = collect(study, sandbox)
    assert outcome.result.finished
    truth = assert_exact(study, sandbox)
    assert sandbox.stats.snapshot()["POST /2/tweets"] == len(truth["posts"]) + 1
    [wait] = outcome.said("rate limited while posting")
    with Store.open(study.with_suffix(".db"), create=False) as store:
        first = store.probes()[0]
    assert first.sent_at is not None and first.sent_at > first.planned_at
    assert first.sent_at.timestamp() % WINDOW_SECONDS == 0  # sent at the reset, not before
    assert wait.endswith(")") and f"{first.sent_at:%H:%M:%S}" in wait


def test_a_429_without_reset_headers_backs_off(
    study: Path, sandbox: SandboxServer, control: SandboxControl
) -> None:
    control.add_fault(MENTIONS, 429, times=3, rate_headers=False)
    outcome = collect(study, sandbox)
    assert outcome.result.finished
    assert len(outcome.said("rate limited while polling")) == 3
    assert_exact(study, sandbox)
