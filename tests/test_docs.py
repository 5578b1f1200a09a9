"""The docs cannot drift: every command is documented and helped, and CI runs the README's
test command."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer
from typer.main import get_command
from typer.testing import CliRunner

from mystery.cli import app

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _commands() -> list[str]:
    group = get_command(app)
    assert isinstance(group, typer.core.TyperGroup)
    return sorted(group.commands)


def test_the_app_has_the_commands_the_issues_ask_for() -> None:
    assert {"validate", "plan", "run", "report", "export", "sandbox"} <= set(_commands())


@pytest.mark.parametrize("command", _commands())
def test_every_command_is_documented_in_the_readme(command: str) -> None:
    assert f"`mystery {command}" in README, f"README.md does not document 'mystery {command}'"


@pytest.mark.parametrize("command", _commands())
def test_every_command_and_option_has_help(command: str) -> None:
    result = CliRunner().invoke(app, [command, "--help"])
    assert result.exit_code == 0
    group = get_command(app)
    assert isinstance(group, typer.core.TyperGroup)
    cmd = group.commands[command]
    assert cmd.help, f"mystery {command} has no help text"
    for param in cmd.params:
        if param.param_type_name == "option" and param.name != "help":
            assert getattr(param, "help", None), f"mystery {command} {param.name}: no help"


def _setup_commands() -> list[str]:
    return re.findall(r"```sh\n(.+?)\n```", README)


def test_readme_has_exactly_two_setup_commands() -> None:
    setup = README.split("## Set up", 1)[1].split("\n## ", 1)[0]
    assert len(re.findall(r"```sh\n", setup)) == 2


def test_ci_runs_the_readmes_test_command() -> None:
    test_command = next(c for c in _setup_commands() if "pytest" in c)
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert test_command in ci.splitlines()


def test_readme_demo_command_runs_the_demo_study() -> None:
    demo = next(c for c in _setup_commands() if "mystery run" in c)
    assert demo.endswith("mystery run studies/demo.toml")
    assert (ROOT / "studies" / "demo.toml").is_file()
