"""``mystery auth`` and the credential lookup: flag, then environment, then the owner-only keys
file, then the keyring; values are never printed, and a missing credential is one clear message.
"""

from __future__ import annotations

import json
import os
import stat
from datetime import date
from pathlib import Path

import keyring
import pytest
from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError
from typer.testing import CliRunner

from mystery import credentials
from mystery.cli import app, auth
from tests.studybuilder import study_data, write_study

BEARER = "bearer-7Qz9xK2mVw4pL8sT"
OAUTH1 = ["ck-3hJ8dF2kL9", "cs-Zp4Wq7Rt1Y", "at-Mn6Bv3Cx8Z", "as-Lk2Jh5Gf9D"]


class MemoryKeyring(KeyringBackend):
    """A keyring that works, in memory, for the tests that need one."""

    priority = 1

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.entries: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.entries.pop((service, username), None) is None:
            raise PasswordDeleteError(username)


@pytest.fixture
def memory_keyring() -> MemoryKeyring:
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    return backend


def invoke(*args: str, input: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), input=input)
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def keys_file() -> Path:
    return credentials.keys_path()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- set -----------------------------------------------------------------------------------------


def test_set_x_bearer_from_stdin_writes_an_owner_only_file() -> None:
    code, output = invoke("auth", "set", "x", input=BEARER + "\n")
    assert code == 0, output
    assert f"Saved X_BEARER_TOKEN in file {keys_file()}" in output
    assert BEARER not in output
    assert json.loads(keys_file().read_text()) == {"X_BEARER_TOKEN": BEARER}
    assert mode(keys_file()) == 0o600
    assert mode(keys_file().parent) == 0o700
    assert credentials.get_secret("X_BEARER_TOKEN") == BEARER
    assert [p.name for p in keys_file().parent.iterdir()] == ["keys.json"]  # no temp file left


def test_set_x_oauth1_from_four_lines_keeps_other_keys() -> None:
    invoke("auth", "set", "mastodon", input="mastodon-token-123\n")
    code, output = invoke("auth", "set", "x", input="\n".join(OAUTH1) + "\n")
    assert code == 0, output
    stored = json.loads(keys_file().read_text())
    assert stored == dict(zip(credentials.X_OAUTH1, OAUTH1, strict=True)) | {
        "MASTODON_TOKEN": "mastodon-token-123"
    }
    assert not any(value in output for value in OAUTH1)


def test_set_prompts_with_hidden_input_at_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, "_interactive", lambda: True)
    # An empty bearer token means: ask for the four OAuth 1.0a keys instead.
    code, output = invoke("auth", "set", "x", input="\n" + "\n".join(OAUTH1) + "\n")
    assert code == 0, output
    assert "Input is hidden" in output
    assert "X_BEARER_TOKEN (leave empty to give the OAuth 1.0a keys instead):" in output
    for key in credentials.X_OAUTH1:
        assert f"{key}:" in output
    assert not any(value in output for value in OAUTH1)  # hidden: not echoed
    assert json.loads(keys_file().read_text()) == dict(
        zip(credentials.X_OAUTH1, OAUTH1, strict=True)
    )


def test_set_one_key_with_key_option(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, "_interactive", lambda: True)
    code, output = invoke("auth", "set", "x", "--key", "mystery_x_bearer_token",
                          input=BEARER + "\n")
    assert code == 0, output
    assert json.loads(keys_file().read_text()) == {"X_BEARER_TOKEN": BEARER}


def test_a_new_file_is_never_readable_by_others_even_for_a_moment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    old = os.umask(0)  # the most permissive umask there is
    seen: list[int] = []
    real_replace = os.replace

    def spy(src: str, dst: str) -> None:
        seen.append(mode(Path(src)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    try:
        invoke("auth", "set", "x", input=BEARER + "\n")
        invoke("auth", "set", "email", input="mail-password-1\n")
    finally:
        os.umask(old)
    assert seen == [0o600, 0o600]
    assert mode(keys_file()) == 0o600


@pytest.mark.parametrize(
    ("args", "stdin", "expected"),
    [
        (["x"], "", "expected on stdin 1 line (X_BEARER_TOKEN) or 4 lines"),
        (["x"], "a1b2c3d4\ne5f6g7h8\n", "got 2"),
        (["mastodon"], "two words\n", "contains spaces or control characters"),
        (["x", "--key", "MASTODON_TOKEN"], "abcdef\n", "MASTODON_TOKEN is not a x key"),
    ],
)
def test_set_refuses_bad_input_and_writes_nothing(args: list[str], stdin: str,
                                                  expected: str) -> None:
    code, output = invoke("auth", "set", *args, input=stdin)
    assert code == 1
    assert expected in output
    assert not keys_file().exists()


def test_unknown_channel_is_a_usage_error() -> None:
    code, output = invoke("auth", "set", "myspace", input="x\n")
    assert code == 2
    assert "'myspace' is not one of 'x', 'mastodon', 'bluesky', 'email'" in output


def test_set_warns_when_the_environment_overrides_the_saved_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MYSTERY_X_BEARER_TOKEN", "from-the-environment")
    code, output = invoke("auth", "set", "x", input=BEARER + "\n")
    assert code == 0
    assert "MYSTERY_X_BEARER_TOKEN is set in the environment and wins" in output


# -- keyring -------------------------------------------------------------------------------------


def test_set_in_the_keyring_moves_the_key_out_of_the_file(memory_keyring: MemoryKeyring) -> None:
    invoke("auth", "set", "x", input="old-bearer-value\n")
    code, output = invoke("auth", "set", "x", "--keyring", input=BEARER + "\n")
    assert code == 0, output
    assert "Saved X_BEARER_TOKEN in keyring service 'mystery'" in output
    assert memory_keyring.entries == {("mystery", "X_BEARER_TOKEN"): BEARER}
    assert json.loads(keys_file().read_text()) == {}
    found = credentials.lookup("X_BEARER_TOKEN")
    assert found is not None and found.source == "keyring" and found.value == BEARER


def test_keyring_without_a_backend_is_a_clear_error_and_lookup_skips_it() -> None:
    code, output = invoke("auth", "set", "x", "--keyring", input=BEARER + "\n")
    assert code == 1
    assert "the system keyring cannot store X_BEARER_TOKEN" in output
    assert "drop --keyring" in output
    assert credentials.get_secret("X_BEARER_TOKEN") is None  # the fail backend is skipped


# -- lookup order --------------------------------------------------------------------------------


def test_lookup_order_is_flag_environment_file_keyring(
    monkeypatch: pytest.MonkeyPatch, memory_keyring: MemoryKeyring
) -> None:
    key = "X_BEARER_TOKEN"
    memory_keyring.set_password("mystery", key, "from-keyring")
    assert credentials.get_secret(key) == "from-keyring"
    invoke("auth", "set", "x", input="from-file\n")
    memory_keyring.set_password("mystery", key, "from-keyring")  # set moved it; put it back
    assert credentials.get_secret(key) == "from-file"
    monkeypatch.setenv("MYSTERY_X_BEARER_TOKEN", "from-env")
    assert credentials.get_secret(key) == "from-env"
    assert credentials.get_secret(key, flag="from-flag") == "from-flag"
    monkeypatch.setenv("MYSTERY_X_BEARER_TOKEN", "")  # empty counts as unset
    assert credentials.get_secret(key) == "from-file"
    found = credentials.lookup(key)
    assert found is not None
    assert "from-file" not in repr(found) and "from-file" not in str(found)


# -- list, path, remove --------------------------------------------------------------------------


def test_list_shows_where_each_key_comes_from_never_the_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    invoke("auth", "set", "x", input="\n".join(OAUTH1) + "\n")
    monkeypatch.setenv("MYSTERY_X_ACCESS_TOKEN", "env-access-token")
    monkeypatch.setenv("MYSTERY_EMAIL_PASSWORD", "env-mail-password")
    code, output = invoke("auth", "list")
    assert code == 0, output
    for value in [*OAUTH1, "env-access-token", "env-mail-password"]:
        assert value not in output
    rows = {line.split()[1]: line for line in output.splitlines() if line.startswith(
        ("x ", "mastodon ", "bluesky ", "email "))}
    assert rows["X_CONSUMER_KEY"].split()[2:] == ["********", "file", str(keys_file())]
    assert rows["X_ACCESS_TOKEN"].split()[2:] == ["********", "environment",
                                                  "MYSTERY_X_ACCESS_TOKEN"]
    assert rows["X_BEARER_TOKEN"].split()[2:] == ["-", "not", "set"]
    assert "x: ready (OAuth 1.0a)" in output
    assert "email: ready (EMAIL_PASSWORD)" in output
    assert "mastodon: not set" in output


def test_list_one_channel_and_an_incomplete_set() -> None:
    invoke("auth", "set", "x", "--key", "X_CONSUMER_KEY", input="only-one-key\n")
    code, output = invoke("auth", "list", "X")
    assert code == 0
    assert "x: incomplete: missing X_CONSUMER_SECRET, X_ACCESS_TOKEN, X_ACCESS_TOKEN_SECRET" \
        in output
    assert "mastodon" not in output


def test_path_prints_the_keys_file(isolated_environment: Path) -> None:
    code, output = invoke("auth", "path")
    assert code == 0
    assert output.strip() == str(isolated_environment / "keys.json")


def test_remove_deletes_from_file_and_keyring_and_names_the_environment(
    monkeypatch: pytest.MonkeyPatch, memory_keyring: MemoryKeyring
) -> None:
    invoke("auth", "set", "x", input="\n".join(OAUTH1) + "\n")
    invoke("auth", "set", "mastodon", input="mastodon-token-123\n")
    memory_keyring.set_password("mystery", "X_BEARER_TOKEN", BEARER)
    monkeypatch.setenv("MYSTERY_X_BEARER_TOKEN", "env-bearer-token")
    code, output = invoke("auth", "remove", "x")
    assert code == 0, output
    assert f"Removed X_CONSUMER_KEY from file {keys_file()}" in output
    assert "Removed X_BEARER_TOKEN from keyring service 'mystery'" in output
    assert "Still set in the environment: MYSTERY_X_BEARER_TOKEN" in output
    assert json.loads(keys_file().read_text()) == {"MASTODON_TOKEN": "mastodon-token-123"}
    assert memory_keyring.entries == {}
    assert BEARER not in output and "env-bearer-token" not in output


def test_remove_when_nothing_is_stored() -> None:
    code, output = invoke("auth", "remove", "bluesky")
    assert code == 0
    assert "No bluesky key was stored" in output


# -- a broken keys file --------------------------------------------------------------------------


def test_a_keys_file_others_can_read_is_refused_with_the_fix() -> None:
    invoke("auth", "set", "x", input=BEARER + "\n")
    keys_file().chmod(0o644)
    code, output = invoke("auth", "list")
    assert code == 1
    assert f"{keys_file()} is readable by other users (mode 644)" in output
    assert f"chmod 600 {keys_file()}" in output
    assert BEARER not in output


@pytest.mark.parametrize("content", [b"{not json", b"[1, 2]", b'{"X_BEARER_TOKEN": 5}', b"\xff"])
def test_a_corrupt_keys_file_is_refused_with_the_fix(content: bytes) -> None:
    keys_file().parent.mkdir(parents=True, exist_ok=True)
    keys_file().write_bytes(content)
    keys_file().chmod(0o600)
    code, output = invoke("auth", "list")
    assert code == 1
    assert str(keys_file()) in output
    assert "delete it and run 'mystery auth set CHANNEL' again" in output


# -- running without credentials -----------------------------------------------------------------

REAL_STUDY = study_data(
    name="real", timezone=None, synthetic=None,
    channels={"x": {"account": "researcher", "endpoint": "https://api.x.com", "mode": "auto"}},
    questions=[{"id": "q", "text": "Hi {brand}, are you open on Sundays?"}],
    schedule={"start": date(2026, 3, 2), "end": date(2026, 3, 8), "probes_per_brand": 1},
    brands=[{"name": "Alpha", "handles": {"x": "Alpha"}}],
    sandbox=None,
)


def test_running_for_real_without_credentials_says_exactly_what_to_set(tmp_path: Path) -> None:
    study = write_study(tmp_path, REAL_STUDY, "real.toml")
    code, output = invoke("run", str(study), "--once", "--quiet", "--live")
    assert code == 1
    assert output.startswith("Error: no X credentials")
    assert "MYSTERY_X_BEARER_TOKEN" in output
    assert all(credentials.env_name(k) in output for k in credentials.X_OAUTH1)
    assert "mystery auth" in output
    assert output.count("\n") == 1  # one message


def test_missing_help_names_the_command_and_every_variable() -> None:
    assert credentials.missing_help("x") == (
        "run 'mystery auth set x', or set MYSTERY_X_BEARER_TOKEN or MYSTERY_X_CONSUMER_KEY and "
        "MYSTERY_X_CONSUMER_SECRET and MYSTERY_X_ACCESS_TOKEN and MYSTERY_X_ACCESS_TOKEN_SECRET "
        "in the environment ('mystery auth list' shows what is set)"
    )
    assert "MYSTERY_BLUESKY_APP_PASSWORD" in credentials.missing_help("bluesky")


def test_auth_commands_have_help_text() -> None:
    for command in ("set", "list", "path", "remove"):
        code, output = invoke("auth", command, "--help")
        assert code == 0
        assert "Usage: mystery auth" in output
