"""``budget_usd`` is the study's, across runners: two researchers' runners on one PostgreSQL
study spend from one budget, and the store's total is every post X billed.

Each runner used to keep its own ledger and write it over the store's: two runners each spent
the whole budget, and the saved total held one runner's spending (what a third runner, or the
next run, then believed). Now each adds what it spent to the study's total and asks for that
total before every post."""

from __future__ import annotations

import json
import subprocess
from decimal import Decimal
from pathlib import Path

from mystery.channels.x_billing import Spend
from mystery.sandbox import SandboxControl
from mystery.store.store import Store
from tests.collect.test_budget import budgeted
from tests.crash.crash_helpers import PYTHON, standalone_sandbox
from tests.postgres import PostgresServer
from tests.studybuilder import write_study

ACCOUNTS = ["res_a", "res_b"]


def test_two_runners_spend_from_one_budget_and_save_every_post(
        tmp_path: Path, postgres_server: PostgresServer) -> None:
    data = budgeted("0.05")  # three posts ($0.045) and their reads: no room for a fourth
    x = {k: v for k, v in data["channels"]["x"].items() if k != "account"}
    data["channels"]["x"] = {**x, "accounts": ACCOUNTS, "endpoint": "sandbox"}
    study = write_study(tmp_path, data, "budgeted.toml")
    url = postgres_server.database()
    with standalone_sandbox() as sandbox, SandboxControl(sandbox) as control:
        runners = [subprocess.Popen(
            [PYTHON, "-m", "mystery", "run", str(study), "--db", url, "--sandbox-url", sandbox,
             "--account", account, "--quiet", "--no-report"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            for account in ACCOUNTS]
        errors = [runner.communicate(timeout=120)[1] for runner in runners]
        posted = len(control.posts()["posts"])
    assert all("Traceback" not in err for err in errors), errors
    assert any("the budget is spent" in err for err in errors), errors
    with Store.open(url, create=False) as store:
        saved = Spend.from_counts(json.loads(store.meta("spend:x") or "{}"))
        sent = sum(1 for p in store.probes() if p.sent_at is not None)
    assert saved.posts == sent == posted  # every post billed is in the study's total
    # Both runners spend from the one budget: each post is reserved in the study's total in
    # the transaction that checks it fits, so no two runners take the last of it together.
    assert posted == 3
    assert saved.total_usd <= Decimal("0.05") < saved.total_usd + Decimal("0.015")
