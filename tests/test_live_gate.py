"""Against a real platform nothing is posted without --live; in ``manual`` mode (real X's
default) nothing is posted by the runner at all, and in ``confirm`` mode only what the
researcher says yes to.

The "real platform" here is a standalone sandbox named by its URL, exactly as a real endpoint
would be: the study's credentials are read and the safeguards apply, and the sandbox's own
record shows what was posted."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from mystery.cli import app
from mystery.connect import world_start
from mystery.sandbox import SandboxControl, SandboxServer
from mystery.sandbox.spec import WorldSpec
from mystery.store import Store
from mystery.studyload import load_study

STUDY = """\
name = "real"
year = 2026
cutoff = "2d"

[channels.x]
account = "researcher"
endpoint = "https://api.x.com"
{mode}

[[questions]]
id = "q"
text = "Hi {{brand}}, are you open on Sundays?"

[schedule]
start = 2026-03-02
end = 2026-03-08
probes_per_brand = 1

[[brands]]
name = "Alpha"
handles = {{ x = "Alpha" }}
"""


def _run(tmp_path: Path, mode: str, *args: str) -> tuple[int, str]:
    path = tmp_path / "real.toml"
    path.write_text(STUDY.format(mode=mode), encoding="utf-8")
    result = CliRunner().invoke(app, ["run", str(path), "--once", "--quiet", *args])
    return result.exit_code, result.output


def test_real_endpoint_without_live_posts_nothing_and_writes_nothing(tmp_path: Path) -> None:
    code, output = _run(tmp_path, 'mode = "auto"')
    assert code == 1
    assert "nothing is posted there without --live" in output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["real.toml"]


PSEUDO_REAL = STUDY.replace('endpoint = "https://api.x.com"', 'endpoint = "{url}"') + """
[[brands]]
name = "Beta"
handles = {{ x = "Beta" }}
"""


@pytest.fixture
def pseudo_real(tmp_path: Path, sandbox: SandboxServer, control: SandboxControl,
                monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MYSTERY_X_BEARER_TOKEN", "token-for-the-pseudo-real-x")
    return tmp_path


def _pseudo(tmp_path: Path, url: str, control: SandboxControl, mode: str,
            *args: str, answers: str | None = None) -> tuple[int, str]:
    path = tmp_path / "real.toml"
    path.write_text(PSEUDO_REAL.format(url=url, mode=mode), encoding="utf-8")
    study = load_study(path).study
    control.put_world(WorldSpec.from_study(study, world_start(study)))
    result = CliRunner().invoke(app, ["run", str(path), "--once", "--quiet", "--no-report",
                                      *args], input=answers)
    return result.exit_code, result.output


def test_without_live_the_platform_sees_no_post(pseudo_real: Path, sandbox: SandboxServer,
                                                control: SandboxControl) -> None:
    code, output = _pseudo(pseudo_real, sandbox.url, control, 'mode = "auto"')
    assert code == 1 and "without --live" in output
    assert control.posts()["posts"] == []
    assert sorted(p.name for p in pseudo_real.iterdir()) == ["real.toml"]


def test_manual_mode_shows_the_probes_and_posts_nothing(
        pseudo_real: Path, sandbox: SandboxServer, control: SandboxControl) -> None:
    code, output = _pseudo(pseudo_real, sandbox.url, control, "", "--live")  # manual: default
    assert code == 0, output
    for brand in ("Alpha", "Beta"):
        assert f"to:    {brand} (@{brand})" in output
        assert f"text:  @{brand} Hi {brand}, are you open on Sundays?" in output
    assert "https://x.com/intent/post?text=%40Alpha%20Hi%20Alpha%2C%20are%20you" in output
    assert control.posts()["posts"] == []
    assert sandbox.stats.snapshot().get("POST /2/tweets", 0) == 0


def test_confirm_mode_posts_only_what_the_researcher_accepts(
        pseudo_real: Path, sandbox: SandboxServer, control: SandboxControl) -> None:
    code, output = _pseudo(pseudo_real, sandbox.url, control, 'mode = "confirm"', "--live",
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
    code, output = _pseudo(pseudo_real, sandbox.url, control, 'mode = "confirm"', "--live")
    assert code == 1
    assert "needs a yes or no" in output and "Traceback" not in output
    assert control.posts()["posts"] == []
