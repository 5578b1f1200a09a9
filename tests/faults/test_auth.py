"""401/403: the channel stops with a message naming the credentials to fix; ``mystery run``
exits 1; nothing is half-done, and a later run (credentials fixed) finishes exactly."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from mystery.cli import app
from mystery.sandbox import SandboxControl, SandboxServer
from mystery.store.store import Store
from tests.faults.fault_helpers import assert_exact


def _run(study: Path, sandbox: SandboxServer) -> tuple[int, str]:
    result = CliRunner().invoke(
        app, ["run", str(study), "--sandbox-url", sandbox.url, "--quiet", "--no-report"]
    )
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("route", "status", "skip"),
    [("GET /2/users/:id/mentions", 401, 3), ("POST /2/tweets", 403, 4)],
    ids=["401-on-polls", "403-on-posts"],
)
def test_refused_credentials_stop_the_channel_and_the_run_exits_1(
    study: Path, sandbox: SandboxServer, control: SandboxControl, route: str, status: int,
    skip: int,
) -> None:
    control.add_fault(route, status, times=None, skip=skip)
    code, output = _run(study, sandbox)
    assert code == 1
    assert f"channel x stopped: X refused {route} (HTTP {status})" in output
    assert "MYSTERY_X_BEARER_TOKEN" in output and "MYSTERY_X_ACCESS_TOKEN" in output
    assert "paused (run again to resume)" in output
    assert "Traceback" not in output
    with Store.open(study.with_suffix(".db"), create=False) as store:
        assert store.count(("sending",)) == 0  # a refused post is certainly not posted

    control.clear_faults()  # the credentials are fixed
    code, output = _run(study, sandbox)
    assert code == 0, output
    assert "finished" in output
    assert_exact(study, sandbox)


def test_out_of_credits_stops_the_channel_saying_to_top_up_and_never_replies_to_a_brand(
    study: Path, sandbox: SandboxServer, control: SandboxControl,
) -> None:
    control.add_fault("POST /2/tweets", 402, times=None, skip=2)
    code, output = _run(study, sandbox)
    assert code == 1
    assert "channel x stopped: X answered 402 Payment Required" in output
    assert "out of credits; top up at console.x.com" in output
    with Store.open(study.with_suffix(".db"), create=False) as store:
        assert store.count(("sending",)) == 0
    control.clear_faults()  # topped up
    code, output = _run(study, sandbox)
    assert code == 0, output
    truth = assert_exact(study, sandbox)
    # Every post of ours is a fresh probe: the runner never replies to a brand.
    ours = [p for p in truth["posts"] if p["fate"] is not None]
    assert ours and all(p["in_reply_to"] is None for p in truth["posts"])
