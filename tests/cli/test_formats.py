"""--format csv|json: rows for scripts from the commands that print rows, never a secret."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mystery.cli import app

REPO = Path(__file__).resolve().parents[2]


def test_validate_writes_every_problem_as_a_row_and_exits_1(tmp_path: Path) -> None:
    shutil.copy(REPO / "studies" / "demo.toml", tmp_path / "demo.toml")
    shutil.copy(REPO / "studies" / "demo-brands.csv", tmp_path / "demo-brands.csv")
    good = CliRunner().invoke(app, ["validate", str(tmp_path / "demo.toml"), "--format", "json"])
    assert good.exit_code == 0 and json.loads(good.stdout) == []
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "BAD"\nyear = 1900\n')
    result = CliRunner().invoke(app, ["validate", str(bad), "--format", "csv"])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0] == "kind,file,where,message"
    assert any(li.startswith(f"error,{bad},line 1: name,") for li in lines)
    assert any(",schedule,required key is missing" in li for li in lines)


def test_auth_list_as_json_says_where_a_key_comes_from_never_its_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MYSTERY_X_BEARER_TOKEN", "s3cret-token-value")
    result = CliRunner().invoke(app, ["auth", "list", "x", "--format", "json"])
    assert result.exit_code == 0
    rows = {r["key"]: r for r in json.loads(result.stdout)}
    assert rows["X_BEARER_TOKEN"]["set"] == "yes" and rows["X_BEARER_TOKEN"]["from"]
    assert rows["X_CONSUMER_KEY"] == {"channel": "x", "key": "X_CONSUMER_KEY", "set": "no",
                                      "from": ""}
    assert "s3cret" not in result.stdout
