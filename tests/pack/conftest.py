"""The demo study, run once against the sandbox for the pack's tests (its store beside it)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mystery.cli import app

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def ran(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("demo")
    for name in ("demo.toml", "demo-brands.csv"):
        shutil.copy(REPO / "studies" / name, folder / name)
    result = CliRunner().invoke(app, ["run", str(folder / "demo.toml"), "--quiet", "--no-report"])
    assert result.exit_code == 0, result.output
    return folder
