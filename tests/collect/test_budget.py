"""``channels.x.budget_usd``: the runner counts what X would bill, stops the channel when the
budget is spent, keeps the count across runs, and goes on when the budget is raised."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from mystery.channels.x_billing import Spend
from mystery.cli import app
from mystery.sandbox import SandboxServer
from mystery.store.store import Store
from tests.studybuilder import study_data, write_study


def budgeted(budget: str) -> dict[str, Any]:
    """6 brands × 1 probe on X in the sandbox, with ``budget`` dollars to spend."""
    return study_data(
        name="budgeted", timezone=None, cutoff="1d",
        channels={"x": {"account": "mystery_res", "poll_every": "30m",
                        "budget_usd": float(budget)}},
        questions=[{"id": "a", "text": "Hi {brand}, do you deliver on Saturdays?"}],
        schedule={"start": date(2026, 3, 2), "end": date(2026, 3, 6), "probes_per_brand": 1},
        brands=[{"name": f"B{i}", "handles": {"x": f"Brand{i}"}, "profile": "quick"}
                for i in range(6)],
        sandbox={"profiles": {"quick": {"ack_median": "20m"}}},
    )


def _run(path: Path, sandbox: SandboxServer, budget: str) -> tuple[int, str]:
    write_study(path.parent, budgeted(budget), path.name)
    result = CliRunner().invoke(app, ["run", str(path), "--sandbox-url", sandbox.url,
                                      "--quiet", "--no-report"])
    return result.exit_code, result.output


def test_a_spent_budget_stops_the_channel_and_a_raised_one_resumes(
        tmp_path: Path, sandbox: SandboxServer) -> None:
    path = tmp_path / "budgeted.toml"
    code, output = _run(path, sandbox, "0.05")
    assert code == 1
    assert "channel x stopped: the budget is spent" in output
    with Store.open(path.with_suffix(".db"), create=False) as store:
        saved = Spend(**json.loads(store.meta("spend:x") or "{}"))
        sent = sum(1 for p in store.probes() if p.sent_at is not None)
    # Three posts ($0.045) and the replies read after them leave too little for a fourth.
    assert sent == saved.posts == 3
    assert saved.total_usd <= Decimal("0.05") < saved.total_usd + Decimal("0.015")
    assert sandbox.stats.snapshot()["POST /2/tweets"] == 3

    code, output = _run(path, sandbox, "1.0")  # the same store: the budget is not pinned
    assert code == 0, output
    with Store.open(path.with_suffix(".db"), create=False) as store:
        total = Spend(**json.loads(store.meta("spend:x") or "{}"))
        assert all(p.sent_at is not None for p in store.probes())
    assert total.posts == 6 and total.owned_reads >= 6  # counted across both runs


def test_one_runner_for_several_accounts_keeps_one_budget(
        tmp_path: Path, sandbox: SandboxServer) -> None:
    """Three accounts served by one runner spend from the study's one budget: they stop
    together at it, not each at it."""
    data = budgeted("0.05")
    x = {k: v for k, v in data["channels"]["x"].items() if k != "account"}
    data["channels"]["x"] = {**x, "accounts": ["res_a", "res_b", "res_c"]}
    path = write_study(tmp_path, data, "budgeted.toml")
    result = CliRunner().invoke(app, ["run", str(path), "--sandbox-url", sandbox.url,
                                      "--quiet", "--no-report"])
    assert result.exit_code == 1, result.output
    assert "channel x as res_a stopped: the budget is spent" in result.output
    with Store.open(path.with_suffix(".db"), create=False) as store:
        saved = Spend(**json.loads(store.meta("spend:x") or "{}"))
        sent = sum(1 for p in store.probes() if p.sent_at is not None)
    assert sent == saved.posts == sandbox.stats.snapshot()["POST /2/tweets"] == 3
    assert saved.total_usd <= Decimal("0.05") < saved.total_usd + Decimal("0.015")
