"""The CI workflows in ``.github/workflows/`` are linted, and what each promises is tried.

GitHub runs them, this machine cannot: so they are checked with actionlint (types of
expressions, action inputs, deprecated runtimes, script injection), and the one piece of logic
that matters most in each is run here for real: the publish workflow's "commit only when
something changed" script in a throwaway repository, the CI workflow's pinned contract against
the file the contract tests read, the live-study workflow's promises never to commit the store
and never to start a study again from an empty one.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from mystery.credentials import CHANNEL_KEYS, env_name
from tests.sandbox.test_sandbox_contract import SPEC

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _actionlint() -> str:
    """The actionlint installed with the test extras (beside this interpreter), else on PATH."""
    beside = Path(sys.executable).with_name("actionlint")
    found = str(beside) if beside.is_file() else shutil.which("actionlint")
    if found is None:
        pytest.fail("actionlint is missing: pip install -e '.[test]' installs it")
    return found


def _load(name: str) -> dict[Any, Any]:
    data = yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _triggers(workflow: dict[Any, Any]) -> dict[str, Any]:
    # YAML 1.1 reads the bare key `on` as True.
    on = workflow.get("on", workflow.get(True))
    assert isinstance(on, dict)
    return on


def _steps(workflow: dict[Any, Any]) -> list[dict[str, Any]]:
    (job,) = workflow["jobs"].values()
    steps: list[dict[str, Any]] = job["steps"]
    return steps


def _step(workflow: dict[Any, Any], name: str) -> dict[str, Any]:
    return next(s for s in _steps(workflow) if s.get("name") == name)


def test_there_are_the_three_workflows() -> None:
    assert sorted(p.name for p in WORKFLOWS.glob("*.yml")) == [
        "ci.yml", "live-study.yml", "publish.yml",
    ]


def test_actionlint_passes_every_workflow() -> None:
    result = subprocess.run(
        [_actionlint(), "-no-color"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


def test_actionlint_would_catch_a_mistake(tmp_path: Path) -> None:
    """The lint above can fail: the same workflow with one typo in an expression is refused."""
    broken = (WORKFLOWS / "live-study.yml").read_text(encoding="utf-8")
    broken = broken.replace("steps.store.outputs", "steps.stor.outputs", 1)
    (tmp_path / "live-study.yml").write_text(broken, encoding="utf-8")
    result = subprocess.run(
        [_actionlint(), "-no-color", str(tmp_path / "live-study.yml")],
        capture_output=True, text=True, check=False,
    )
    assert result.returncode != 0
    assert "stor" in result.stdout


def test_ci_runs_ci_run_on_push_and_pull_request() -> None:
    ci = _load("ci.yml")
    assert {"push", "pull_request"} <= set(_triggers(ci))
    runs = [s.get("run", "") for s in _steps(ci)]
    assert "bash main/.ci/run" in runs
    assert _step(ci, ".ci/run")["env"]["CI"] == "true"
    checkout = next(s for s in _steps(ci) if str(s.get("uses", "")).startswith("actions/checkout"))
    assert checkout["with"]["path"] == "main", "../shared must sit beside the checkout"


def test_ci_fetches_exactly_the_contract_the_tests_read() -> None:
    if not SPEC.is_file():
        pytest.fail(f"X OpenAPI spec not found at {SPEC}: the shared/ folder must sit beside")
    script = _step(_load("ci.yml"), "Fetch the X API contract")["run"]
    digest = re.search(r"\b([0-9a-f]{64})\s+([^\s\"]+)", script)
    assert digest is not None
    assert digest.group(1) == hashlib.sha256(SPEC.read_bytes()).hexdigest()
    assert digest.group(2) == f"shared/research/x-openapi/{SPEC.name}"
    assert re.search(r"raw\.githubusercontent\.com/xdevplatform/docs/[0-9a-f]{40}/", script)


def _git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout


def test_publish_commits_results_only_when_they_changed(tmp_path: Path) -> None:
    publish = _load("publish.yml")
    assert {"schedule", "workflow_dispatch"} <= set(_triggers(publish))
    assert publish["permissions"] == {"contents": "write"}
    assert "mystery publish" in [s.get("run") for s in _steps(publish)]
    script = _step(publish, "Commit results/ only when something changed")["run"]

    remote, work = tmp_path / "remote.git", tmp_path / "work"
    _git(tmp_path, "init", "-q", "--bare", str(remote))
    _git(tmp_path, "init", "-q", "-b", "main", str(work))
    (work / "results").mkdir()
    (work / "results" / "yoy.csv").write_text("year\n2025\n", encoding="utf-8")
    _git(work, "add", "results")
    _git(work, "-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-qm", "start")
    _git(work, "remote", "add", "origin", str(remote))
    _git(work, "push", "-q", "-u", "origin", "main")

    def run_step() -> str:
        done = subprocess.run(
            ["bash", "-e", "-c", script], cwd=work, capture_output=True, text=True, check=True
        )
        return done.stdout

    assert "unchanged" in run_step()
    assert _git(remote, "rev-list", "--count", "main").strip() == "1"

    (work / "results" / "yoy.csv").write_text("year\n2025\n2026\n", encoding="utf-8")
    (work / "stray.txt").write_text("not a result", encoding="utf-8")
    run_step()
    assert _git(remote, "rev-list", "--count", "main").strip() == "2"
    pushed = _git(remote, "show", "--name-only", "--format=%s", "main").split()
    assert "results/yoy.csv" in pushed
    assert "stray.txt" not in pushed, "only results/ is committed"

    assert "unchanged" in run_step()
    assert _git(remote, "rev-list", "--count", "main").strip() == "2"


def test_live_study_keeps_the_store_out_of_git_and_never_starts_twice(tmp_path: Path) -> None:
    live = _load("live-study.yml")
    (job,) = live["jobs"].values()
    assert job["if"] == "vars.MYSTERY_LIVE_STUDY != ''", "the example must not run by accident"
    assert live["concurrency"]["cancel-in-progress"] is False, "one runner per store"
    scripts = "\n".join(s.get("run", "") for s in _steps(live))
    assert "git commit" not in scripts and "git push" not in scripts
    assert live["permissions"] == {"contents": "read"}

    store = job["env"]["STORE"]
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", store], cwd=ROOT, capture_output=True, check=False
    )
    assert ignored.returncode == 0, f"{store} must be ignored by .gitignore: it holds reply text"

    run = _step(live, "One pass (send what is due, poll once)")
    assert re.search(r'mystery run "\$STUDY" --db "\$STORE" --once --live', run["run"])
    known = {env_name(key) for keys in CHANNEL_KEYS.values() for group in keys for key in group}
    assert set(run["env"]) <= known, "secrets named as mystery reads them"
    for name, value in run["env"].items():
        assert value == f"${{{{ secrets.{name} }}}}"

    guard = _step(live, "Refuse to start the study again from an empty store")
    assert "cache-matched-key == ''" in guard["if"] and "MYSTERY_FIRST_RUN" in guard["if"]
    refused = subprocess.run(["bash", "-e", "-c", guard["run"]], capture_output=True, text=True,
                             check=False)
    assert refused.returncode == 1 and "post every probe again" in refused.stdout

    save = _step(live, "Save the store")
    assert save["if"].startswith("always()"), "a recorded intent must survive a failed pass"
    assert save["with"]["path"] == store.split("/")[0]


@pytest.mark.parametrize("name", ["ci.yml", "publish.yml", "live-study.yml"])
def test_the_readme_shows_how_to_adopt_each_workflow(name: str) -> None:
    section = README.split("## Running in CI", 1)
    assert len(section) == 2, "README.md has no 'Running in CI' section"
    assert f".github/workflows/{name}" in section[1].split("\n## ", 1)[0]
