"""Two stores of one study on one account (two runners with different ``--db``): the second is
stopped by name the first time the platform refuses a post the first store already made."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from mystery.cli import app
from mystery.sandbox import SandboxServer
from tests.faults.fault_helpers import assert_exact


def _run(study: Path, sandbox: SandboxServer, db: Path) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["run", str(study), "--sandbox-url", sandbox.url,
                                      "--db", str(db), "--quiet", "--no-report"])
    return result.exit_code, result.output


def test_a_second_store_on_the_same_account_is_stopped_naming_the_other_stores_post(
    study: Path, sandbox: SandboxServer, tmp_path: Path
) -> None:
    first = study.with_suffix(".db")
    code, output = _run(study, sandbox, first)
    assert code == 0, output
    second = tmp_path / "elsewhere.db"
    code, output = _run(study, sandbox, second)
    assert code == 1
    line = next(li for li in output.splitlines() if li.startswith("Error: "))
    assert "is already on the account's timeline as post" in line
    assert f"but {second} never sent it: another store of this study" in line
    assert "Traceback" not in output
    assert not second.exists()  # nothing recorded, nothing excluded as duplicate content
    assert_exact(study, sandbox)  # the first store's study is whole and exact
