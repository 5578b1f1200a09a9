"""Secrets never leak: not into the store, logs, messages, progress, exports, reports or results/.

Every credential is set to a distinctive random value, the study is collected against the
sandbox and analysed with the real CLI, and then every byte written under the test's folder
(the SQLite store included) and everything printed or logged is searched for those values.
"""

from __future__ import annotations

import logging
import secrets
import shutil
import stat
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from mystery import credentials
from mystery.cli import app
from mystery.collect.connect import world_start
from mystery.sandbox.client import SandboxControl
from mystery.sandbox.server import SandboxServer
from mystery.sandbox.spec import WorldSpec
from mystery.study.load import load_study
from tests.studybuilder import study_data, write_study

REPO = Path(__file__).resolve().parents[1]
ALL_KEYS = sorted({k for c in credentials.CHANNEL_KEYS for k in credentials.channel_keys(c)})
FILE_KEYS = ("MASTODON_TOKEN", "BLUESKY_APP_PASSWORD", "EMAIL_PASSWORD")


@pytest.fixture
def secret_values(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Every key set: X's in the environment, the others in the keys file."""
    values = {key: f"{key.lower()}-{secrets.token_urlsafe(18)}" for key in ALL_KEYS}
    for key, value in values.items():
        if key not in FILE_KEYS:
            monkeypatch.setenv(credentials.env_name(key), value)
    credentials.store_secrets({k: values[k] for k in FILE_KEYS})
    return values


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder with a small copy of the demo study (four brands), as the cwd."""
    studies = tmp_path / "studies"
    studies.mkdir()
    shutil.copy(REPO / "studies" / "demo.toml", studies / "demo.toml")
    brands = (REPO / "studies" / "demo-brands.csv").read_text().splitlines(keepends=True)
    (studies / "demo-brands.csv").write_text("".join(brands[:5]))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _invoke(*args: str) -> Result:
    result = CliRunner().invoke(app, list(args))
    assert "Traceback" not in result.output
    return result


def _leaks(values: dict[str, str], folder: Path, texts: list[str]) -> list[str]:
    """Where any secret (or its UTF-16 form, as SQLite may store text) appears."""
    found = []
    needles = {k: (v.encode(), v.encode("utf-16-le")) for k, v in values.items()}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            found += [f"{key} in {path}" for key, forms in needles.items()
                      if any(form in data for form in forms)]
    for n, text in enumerate(texts):
        found += [f"{key} in output {n}" for key, value in values.items() if value in text]
    return found


def test_a_sandbox_study_run_exported_and_reported_leaks_no_secret(
    project: Path, sandbox: SandboxServer, secret_values: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # a user who turns everything on
    study = "studies/demo.toml"
    commands = [
        ("run", study, "--sandbox-url", sandbox.url, "--quiet"),
        ("export", study),
        ("report", study),
        ("publish", "--root", str(project)),
        ("auth", "list"),
    ]
    outputs = []
    for command in commands:
        result = _invoke(*command)
        assert result.exit_code == 0, (command, result.output)
        outputs.append(result.output)
    written = sorted(str(p.relative_to(project)) for p in project.rglob("*") if p.is_file())
    assert "studies/demo.db" in written
    assert "results/demo/timings.csv" in written
    assert len(written) > 5
    assert _leaks(secret_values, project, [*outputs, caplog.text]) == []


def real_endpoint(url: str) -> dict[str, Any]:
    """A study on X in ``auto`` mode at ``url``: the sandbox, posing as the real X."""
    return study_data(
        name="pseudo-real", timezone=None, cutoff="1d", synthetic=None,
        channels={"x": {"account": "researcher", "endpoint": url, "mode": "auto"}},
        questions=[{"id": "open", "text": "Hi {brand}, are you open on Sunday?"}],
        schedule={"start": date(2026, 3, 2), "end": date(2026, 3, 3), "probes_per_brand": 1},
        brands=[{"name": "Alpha", "handles": {"x": "AlphaShop"}},
                {"name": "Beta", "handles": {"x": "BetaShop"}}],
        sandbox=None,
    )


@pytest.fixture
def pseudo_real(tmp_path: Path, sandbox: SandboxServer,
                monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, SandboxControl]]:
    """A study that takes the sandbox for the real X: the researcher's credentials are read
    and sent over the wire, as they would be to api.x.com."""
    path = write_study(tmp_path, real_endpoint(sandbox.url), "pseudo-real.toml")
    monkeypatch.chdir(tmp_path)
    loaded = load_study(path).study
    with SandboxControl(sandbox.url) as control:
        control.put_world(WorldSpec.from_study(loaded, world_start(loaded)))
        yield path, control


@pytest.mark.parametrize("auth", ["oauth1", "bearer"])
def test_credentials_sent_to_x_stay_out_of_logs_store_and_output(
    pseudo_real: tuple[Path, SandboxControl], secret_values: dict[str, str], auth: str,
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    path, control = pseudo_real
    if auth == "bearer":  # OAuth 1.0a wins when all four keys are set
        monkeypatch.delenv("MYSTERY_X_CONSUMER_KEY")
    caplog.set_level(logging.DEBUG)
    result = _invoke("run", str(path), "--once", "--no-report", "--live")
    assert "Traceback" not in result.output
    assert len(control.posts()["posts"]) == 2, result.output  # it did talk to "X"
    # tweepy (bearer) or requests-oauthlib (OAuth 1.0a) did log the Authorization header,
    # and the credentials in it were redacted.
    logged = [r.getMessage() for r in caplog.records if "'Authorization'" in r.getMessage()]
    assert logged and all(credentials.REDACTED in message for message in logged)
    assert _leaks(secret_values, path.parent, [result.output, caplog.text]) == []


def test_a_refused_credential_is_reported_without_its_value(
    pseudo_real: tuple[Path, SandboxControl], secret_values: dict[str, str],
) -> None:
    path, control = pseudo_real
    control.add_fault("GET /2/users/me", status=401, body="problem")
    result = _invoke("run", str(path), "--once", "--live")
    assert result.exit_code == 1
    assert "HTTP 401" in result.output
    assert _leaks(secret_values, path.parent, [result.output]) == []


def test_the_store_is_owner_only(pseudo_real: tuple[Path, SandboxControl],
                                 secret_values: dict[str, str]) -> None:
    path, _ = pseudo_real
    assert _invoke("run", str(path), "--once", "--no-report", "--live").exit_code == 0
    assert stat.S_IMODE(path.with_suffix(".db").stat().st_mode) == 0o600


def test_mystery_never_turns_on_debug_logging(pseudo_real: tuple[Path, SandboxControl],
                                              secret_values: dict[str, str]) -> None:
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    path = pseudo_real[0]
    assert _invoke("run", str(path), "--once", "--no-report", "--live").exit_code == 0
    assert path.with_suffix(".db").exists()
    for name in ("tweepy", "tweepy.client", "requests_oauthlib", "oauthlib", "urllib3"):
        assert logging.getLogger(name).level == logging.NOTSET, name
    assert root.level == level and root.handlers == handlers


def test_the_redaction_filter_rewrites_messages_arguments_and_tracebacks(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
) -> None:
    token = "tok-" + secrets.token_hex(16)
    monkeypatch.setenv("MYSTERY_X_BEARER_TOKEN", token)
    assert credentials.get_secret("X_BEARER_TOKEN") == token  # handing it out arms the filter
    log = logging.getLogger("tweepy.client")
    with caplog.at_level(logging.DEBUG):
        log.debug("Headers: %s", {"Authorization": f"Bearer {token}"})
        log.debug(f"Making API request with Bearer {token}")
        try:
            raise RuntimeError(f"failed with {token}")
        except RuntimeError:
            log.exception("oops")
    assert token not in caplog.text
    assert caplog.text.count("***") == 3
    assert credentials.redact(f"a {token} b") == "a *** b"


def test_a_derived_session_token_can_be_protected_too(caplog: pytest.LogCaptureFixture) -> None:
    jwt = "eyJ" + secrets.token_urlsafe(30)
    credentials.protect(jwt)
    with caplog.at_level(logging.DEBUG, logger="httpx"):
        logging.getLogger("httpx").debug("refreshed session: %s", jwt)
    assert jwt not in caplog.text and "refreshed session: ***" in caplog.text
