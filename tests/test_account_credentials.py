"""Several researcher accounts on a channel: each has its own keys (``mystery auth set x
--account shopper_a``, ``MYSTERY_X_BEARER_TOKEN__SHOPPER_A``), and ``mystery run --account``
refuses, before writing anything, an account the study does not have or one without its keys."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mystery import credentials
from mystery.cli import app
from tests.studybuilder import study_data, write_study

TOKEN_A = "bearer-A-7Qz9xK2mVw4pL8sT"
TOKEN_B = "bearer-B-Rt5Yu8Io2Pa4Sd6F"
SHARED = "bearer-shared-Gh3Jk6Lz9Xc"

TEAM = study_data(
    name="team", timezone=None, synthetic=None,
    channels={"x": {"accounts": ["shopper_a", "shopper_b"], "endpoint": "https://api.x.com",
                    "mode": "auto"}},
    questions=[{"id": "q", "text": "Hi {brand}, are you open on Sundays?"}],
    schedule={"start": date(2026, 3, 2), "end": date(2026, 3, 8), "probes_per_brand": 2},
    brands=[{"name": "Alpha", "handles": {"x": "Alpha"}}],
    sandbox=None,
)


def invoke(*args: str, input: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), input=input)
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def test_auth_set_for_an_account_keeps_its_own_key_beside_the_shared_one() -> None:
    assert invoke("auth", "set", "x", input=SHARED + "\n")[0] == 0
    code, output = invoke("auth", "set", "x", "--account", "@shopper_a", input=TOKEN_A + "\n")
    assert code == 0, output
    assert "Saved X_BEARER_TOKEN__SHOPPER_A" in output and TOKEN_A not in output
    assert json.loads(credentials.keys_path().read_text()) == {
        "X_BEARER_TOKEN": SHARED, "X_BEARER_TOKEN__SHOPPER_A": TOKEN_A}
    assert credentials.get_secret("X_BEARER_TOKEN", account="shopper_a") == TOKEN_A
    # An account without keys of its own falls back on the channel's (a one-account study).
    assert credentials.get_secret("X_BEARER_TOKEN", account="shopper_b") == SHARED
    assert credentials.missing("x", "shopper_b") and not credentials.missing("x", "shopper_a")


def test_an_accounts_environment_variable_wins_over_the_file(
        monkeypatch: pytest.MonkeyPatch) -> None:
    invoke("auth", "set", "x", "--account", "shopper_b", input=TOKEN_A + "\n")
    monkeypatch.setenv("MYSTERY_X_BEARER_TOKEN__SHOPPER_B", TOKEN_B)
    found = credentials.lookup("X_BEARER_TOKEN", account="shopper_b")
    assert found is not None and found.value == TOKEN_B
    assert found.where == "environment MYSTERY_X_BEARER_TOKEN__SHOPPER_B"


def test_auth_list_and_remove_for_an_account() -> None:
    invoke("auth", "set", "x", "--account", "shopper_a", input=TOKEN_A + "\n")
    code, output = invoke("auth", "list", "x", "--account", "shopper_a")
    assert code == 0 and TOKEN_A not in output
    assert "X_BEARER_TOKEN__SHOPPER_A" in output
    assert "x as shopper_a: ready (X_BEARER_TOKEN)" in output
    code, output = invoke("auth", "list", "x", "--account", "shopper_b")
    assert "x as shopper_b: not set" in output
    code, output = invoke("auth", "remove", "x", "--account", "shopper_a")
    assert code == 0 and "Removed X_BEARER_TOKEN__SHOPPER_A" in output
    assert credentials.lookup("X_BEARER_TOKEN", account="shopper_a") is None


def test_a_team_runner_without_its_accounts_keys_stops_before_writing(tmp_path: Path) -> None:
    """The shared key is not enough: it would post shopper_b's probes from one account."""
    invoke("auth", "set", "x", input=SHARED + "\n")
    invoke("auth", "set", "x", "--account", "shopper_a", input=TOKEN_A + "\n")
    study = write_study(tmp_path, TEAM, "team.toml")
    code, output = invoke("run", str(study), "--once", "--quiet", "--live",
                          "--account", "shopper_b")
    assert code == 1
    assert output == (
        "Error: channels.x: account shopper_b has no credentials of its own, and a channel "
        "with several accounts needs each account's: run 'mystery auth set x --account "
        "shopper_b', or set MYSTERY_X_BEARER_TOKEN__SHOPPER_B or "
        "MYSTERY_X_CONSUMER_KEY__SHOPPER_B and MYSTERY_X_CONSUMER_SECRET__SHOPPER_B and "
        "MYSTERY_X_ACCESS_TOKEN__SHOPPER_B and MYSTERY_X_ACCESS_TOKEN_SECRET__SHOPPER_B in the "
        "environment ('mystery auth list x --account shopper_b' shows what is set)\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["team.toml"]  # no store
    assert SHARED not in output and TOKEN_A not in output


def test_a_runner_for_an_account_the_study_does_not_have_is_refused(tmp_path: Path) -> None:
    study = write_study(tmp_path, TEAM, "team.toml")
    code, output = invoke("run", str(study), "--once", "--quiet", "--live",
                          "--account", "shopper_c")
    assert code == 1
    assert output == ("Error: --account shopper_c: the study has no such account; its accounts "
                      "are x: shopper_a, shopper_b (the study file's account or accounts keys)\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["team.toml"]


def test_one_runner_for_every_account_needs_every_accounts_keys(tmp_path: Path) -> None:
    """Without --account the runner serves shopper_a and shopper_b: it is refused, before
    writing anything, while one of them has no keys of its own, even with the shared key."""
    invoke("auth", "set", "x", input=SHARED + "\n")
    invoke("auth", "set", "x", "--account", "shopper_a", input=TOKEN_A + "\n")
    study = write_study(tmp_path, TEAM, "team.toml")
    code, output = invoke("run", str(study), "--once", "--quiet", "--live")
    assert code == 1
    assert output.startswith("Error: channels.x: account shopper_b has no credentials of its "
                             "own, and a channel with several accounts needs each account's: "
                             "run 'mystery auth set x --account shopper_b'")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["team.toml"]
    assert SHARED not in output and TOKEN_A not in output
