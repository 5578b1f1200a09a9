"""Against a real platform nothing is posted without --live; in ``manual`` mode (real X's
default) nothing is posted by the runner at all, and in ``confirm`` mode only what the
researcher says yes to.

The "real platform" here is a standalone sandbox named by its URL, exactly as a real endpoint
would be: the study's credentials are read and the safeguards apply, and the sandbox's own
record shows what was posted."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mystery.cli import app
from mystery.collect.connect import world_start
from mystery.sandbox import SandboxControl, SandboxServer
from mystery.sandbox.spec import WorldSpec
from mystery.store.store import Store
from mystery.study.load import load_study
from tests.studybuilder import study_data, write_study


def real_study(mode: str | None, endpoint: str = "https://api.x.com",
               brands: tuple[str, ...] = ("Alpha",)) -> dict[str, Any]:
    """One probe per brand on X at ``endpoint``, in ``mode`` (``None``: the channel's
    default)."""
    x = {"account": "researcher", "endpoint": endpoint} | ({"mode": mode} if mode else {})
    return study_data(
        name="real", timezone=None, synthetic=None, channels={"x": x},
        questions=[{"id": "q", "text": "Hi {brand}, are you open on Sundays?"}],
        schedule={"start": date(2026, 3, 2), "end": date(2026, 3, 8), "probes_per_brand": 1},
        brands=[{"name": name, "handles": {"x": name}} for name in brands],
        sandbox=None,
    )


def _run(tmp_path: Path, mode: str | None, *args: str) -> tuple[int, str]:
    path = write_study(tmp_path, real_study(mode), "real.toml")
    result = CliRunner().invoke(app, ["run", str(path), "--once", "--quiet", *args])
    return result.exit_code, result.output


def test_real_endpoint_without_live_posts_nothing_and_writes_nothing(tmp_path: Path) -> None:
    code, output = _run(tmp_path, "auto")
    assert code == 1
    assert "nothing is posted there without --live" in output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["real.toml"]


@pytest.fixture
def pseudo_real(tmp_path: Path, sandbox: SandboxServer, control: SandboxControl,
                monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MYSTERY_X_BEARER_TOKEN", "token-for-the-pseudo-real-x")
    return tmp_path


def _pseudo(tmp_path: Path, url: str, control: SandboxControl, mode: str | None,
            *args: str, answers: str | None = None) -> tuple[int, str]:
    path = write_study(tmp_path, real_study(mode, url, ("Alpha", "Beta")), "real.toml")
    study = load_study(path).study
    control.put_world(WorldSpec.from_study(study, world_start(study)))
    result = CliRunner().invoke(app, ["run", str(path), "--once", "--quiet", "--no-report",
                                      *args], input=answers)
    return result.exit_code, result.output


def test_without_live_the_platform_sees_no_post(pseudo_real: Path, sandbox: SandboxServer,
                                                control: SandboxControl) -> None:
    code, output = _pseudo(pseudo_real, sandbox.url, control, "auto")
    assert code == 1 and "without --live" in output
    assert control.posts()["posts"] == []
    assert sorted(p.name for p in pseudo_real.iterdir()) == ["real.toml"]


def test_manual_mode_shows_the_probes_and_posts_nothing(
        pseudo_real: Path, sandbox: SandboxServer, control: SandboxControl) -> None:
    code, output = _pseudo(pseudo_real, sandbox.url, control, None, "--live")  # manual: default
    assert code == 0, output
    for brand in ("Alpha", "Beta"):
        assert f"to:    {brand} (@{brand})" in output
        assert f"text:  @{brand} Hi {brand}, are you open on Sundays?" in output
    assert "https://x.com/intent/post?text=%40Alpha%20Hi%20Alpha%2C%20are%20you" in output
    assert control.posts()["posts"] == []
    assert sandbox.stats.snapshot().get("POST /2/tweets", 0) == 0


def test_confirm_mode_posts_only_what_the_researcher_accepts(
        pseudo_real: Path, sandbox: SandboxServer, control: SandboxControl) -> None:
    code, output = _pseudo(pseudo_real, sandbox.url, control, "confirm", "--live",
                           answers="n\ny\n")
    assert code == 0, output
    assert "Post p0001 to Alpha now?" in output or "Post p0001 to Beta now?" in output
    posts = control.posts()["posts"]
    assert len(posts) == 1
    with Store.open(pseudo_real / "real.db", create=False) as store:
        probes = {p.id: p for p in store.probes()}
        flags = {f.probe_id: f for f in store.flags()}
    declined, accepted = probes["p0001"], probes["p0002"]
    assert declined.outcome == "excluded" and flags["p0001"].kind == "declined"
    assert accepted.message_id == posts[0]["id"]


def test_confirm_mode_with_nobody_to_answer_stops_cleanly(
        pseudo_real: Path, sandbox: SandboxServer, control: SandboxControl) -> None:
    code, output = _pseudo(pseudo_real, sandbox.url, control, "confirm", "--live")
    assert code == 1
    assert "needs a yes or no" in output and "Traceback" not in output
    assert control.posts()["posts"] == []
