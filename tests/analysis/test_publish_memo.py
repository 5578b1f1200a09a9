"""A warm publish recomputes nothing, and never trusts its memo further than it should."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mystery import memo
from mystery import publish as publishing
from mystery.analysis.charts import HIGHLIGHT
from mystery.publish import check, publish
from tests.analysis.synthetic import edit_slowest_answer, make_study


@pytest.fixture
def project(tmp_path: Path) -> Path:
    for year in (2025, 2026):
        make_study(tmp_path, series="uk-retail", year=year, brands=4, probes_per_brand=3, seed=3)
    publish(tmp_path)  # cold: computes everything and leaves the memo
    return tmp_path


def _no_generation(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every call of generate (the tables' recomputation) instead of failing it: a test
    that expects none asserts the list stays empty."""
    calls: list[str] = []
    real = publishing.generate

    def counted(*args: object, **kwargs: object) -> object:
        calls.append("generate")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(publishing, "generate", counted)
    return calls


def test_a_warm_publish_recomputes_nothing_and_reports_every_file_unchanged(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cold = publish(project, recompute=True)
    calls = _no_generation(monkeypatch)
    warm = publish(project)
    assert calls == []
    assert [o.path for o in warm] == [o.path for o in cold]
    assert {o.state for o in warm} == {"unchanged"}
    assert Path("results/uk-retail/yoy.csv") in {o.path for o in warm}


def test_a_changed_timing_is_recomputed_and_the_tables_it_moves_are_written(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _no_generation(monkeypatch)
    edit_slowest_answer(project / "results/uk-retail-2026/timings.csv")
    outcomes = publish(project)
    assert calls == ["generate"]
    written = {o.path for o in outcomes if o.state == "written"}
    assert Path("results/uk-retail-2026/summary.csv") in written
    assert Path("results/uk-retail/yoy.csv") in written
    publish(project)  # and the memo now vouches for the new results
    assert calls == ["generate"]
    assert all(o.state == "unchanged" for o in check(project))


@pytest.mark.parametrize("damage", ["edit", "delete"])
def test_a_touched_output_is_written_again(
    project: Path, monkeypatch: pytest.MonkeyPatch, damage: str
) -> None:
    table = project / "results/uk-retail/yoy.md"
    good = table.read_bytes()
    if damage == "edit":
        table.write_bytes(good.replace(b"|", b"!", 1))
    else:
        table.unlink()
    calls = _no_generation(monkeypatch)
    outcomes = publish(project)
    assert calls == ["generate"]
    assert [o.state for o in outcomes if o.path == Path("results/uk-retail/yoy.md")] == \
        ["written"]
    assert table.read_bytes() == good


def test_other_options_are_other_inputs(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _no_generation(monkeypatch)
    publish(project, brand_stat="median")
    assert calls == ["generate"]
    assert "median" in (project / "results/uk-retail/yoy.csv").read_text().splitlines()[0]


def test_a_new_library_release_or_code_makes_the_memo_stale(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = memo.key(project, {"x": 1})
    with monkeypatch.context() as patched:
        patched.setattr(memo, "_releases", lambda: {"polars": "99.0"})
        assert memo.key(project, {"x": 1}) != before
    with monkeypatch.context() as patched:
        patched.setattr(memo, "_code", lambda: "edited")
        assert memo.key(project, {"x": 1}) != before
    assert memo.key(project, {"x": 1}) == before


def test_a_warm_check_recomputes_nothing_and_names_the_files_a_full_check_names(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    full = check(project, recompute=True)
    calls = _no_generation(monkeypatch)
    warm = check(project)
    assert calls == []
    assert [o.path for o in warm] == [o.path for o in full]
    assert {o.state for o in warm} == {o.state for o in full} == {"unchanged"}
    check(project, recompute=True)
    assert calls == ["generate"]


def test_a_warm_check_still_names_a_hand_edited_table(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = project / "results/uk-retail-2025/summary.md"
    table.write_text(table.read_text().replace("|", "!", 1))
    calls = _no_generation(monkeypatch)
    states = {o.path: o.state for o in check(project)}
    assert calls == ["generate"]  # the file no longer has the memo's hash: recomputed
    assert states[Path("results/uk-retail-2025/summary.md")] == "stale"
    assert not memo.recall(project, memo.key(project, publishing._options("mean", (), HIGHLIGHT)))


def test_recompute_ignores_a_memo_that_vouches_for_an_edited_table(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The memo is local state, like any cache: rewritten by hand to match a hand-edited table
    it vouches for it. --recompute (and CI's fresh clone, which has no memo) trusts none."""
    table = project / "results/uk-retail-2025/summary.md"
    table.write_text(table.read_text().replace("|", "!", 1))
    path = memo.path(project)
    doc = json.loads(path.read_text())
    doc["files"]["results/uk-retail-2025/summary.md"] = memo._digest(table)
    path.write_text(json.dumps(doc))
    calls = _no_generation(monkeypatch)
    states = {o.path: o.state for o in check(project, recompute=True)}
    assert states[Path("results/uk-retail-2025/summary.md")] == "stale"
    assert calls == ["generate"]
    publish(project, recompute=True)
    assert calls == ["generate", "generate"]
    assert "!" not in table.read_text().splitlines()[0]


def test_a_check_that_finds_everything_current_leaves_the_memo(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    memo.path(project).unlink()  # as on a fresh clone
    calls = _no_generation(monkeypatch)
    assert {o.state for o in check(project)} == {"unchanged"}
    assert {o.state for o in check(project)} == {"unchanged"}
    assert {o.state for o in publish(project)} == {"unchanged"}
    assert calls == ["generate"]  # the first check only


def test_a_check_that_finds_a_stale_file_leaves_no_memo(project: Path) -> None:
    memo.path(project).unlink()
    edit_slowest_answer(project / "results/uk-retail-2026/timings.csv")
    assert "stale" in {o.state for o in check(project)}
    assert not memo.path(project).exists()


def test_a_machine_with_other_code_paths_has_another_key(project: Path) -> None:
    """numpy's SIMD paths (a CPU generation) and polars' threads are part of the key, so a
    check under NPY_DISABLE_CPU_FEATURES recomputes rather than trusting a memo of others."""
    script = ("import sys; from mystery import memo; "
              "print(memo.key(sys.argv[1], {}), memo._machine().get('numpy_dispatch'))")
    env = {k: v for k, v in os.environ.items()
           if k not in ("NPY_DISABLE_CPU_FEATURES", "POLARS_MAX_THREADS")}

    def key(**extra: str) -> list[str]:
        done = subprocess.run([sys.executable, "-c", script, str(project)], check=True,
                              capture_output=True, text=True, env={**env, **extra})
        return done.stdout.split(maxsplit=1)

    native, dispatched = key()
    assert key() == [native, dispatched]  # the same machine, the same key
    assert key(POLARS_MAX_THREADS="1")[0] != native
    enabled = re.findall(r"'(\w+)'", dispatched)
    if enabled:  # numpy takes SIMD paths here: switching the newest one off is another key
        assert key(NPY_DISABLE_CPU_FEATURES=enabled[-1])[0] != native
    else:  # this CPU has no path to switch: nothing to tell apart
        assert dispatched.strip() == "[]"


def test_an_input_edited_while_publishing_is_not_recorded_as_its_source(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The memo's key is taken before and after: timings edited after the first key but
    before they were read must not become a memo saying the old timings gave these tables."""
    timings = project / "results/uk-retail-2026/timings.csv"
    original = timings.read_bytes()
    real = publishing.generate

    def edited_meanwhile(*args: object, **kwargs: object) -> object:
        # after publish took its key, before gather reads the timings
        edit_slowest_answer(timings)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    memo.path(project).unlink()  # so that this publish computes
    with monkeypatch.context() as patched:  # not undo(): it would undo the clean room too
        patched.setattr(publishing, "generate", edited_meanwhile)
        publish(project)
    timings.write_bytes(original)  # back to the timings the key was taken from
    calls = _no_generation(monkeypatch)
    publish(project)
    assert calls == ["generate"]
    assert all(o.state == "unchanged" for o in check(project))


def test_an_unreadable_memo_is_no_memo(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (memo.path(project)).write_text("{not json")
    calls = _no_generation(monkeypatch)
    outcomes = publish(project)
    assert calls == ["generate"]
    assert {o.state for o in outcomes} == {"unchanged"}


def test_the_memo_is_outside_the_checkout_and_holds_only_hashes(project: Path) -> None:
    """results/ holds results only: the memo is in the cache folder (the tests' own, by
    $MYSTERY_CACHE_DIR), one per checkout, so git and every script that walks results/ see
    nothing of it."""
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    untracked = subprocess.run(["git", "-C", str(project), "status", "--porcelain",
                                "--untracked-files=all"], capture_output=True, text=True,
                               check=True).stdout.splitlines()
    assert all(line.startswith("?? results/uk-retail") for line in untracked), untracked
    where = memo.path(project)
    assert where.is_relative_to(memo.cache_dir()) and not where.is_relative_to(project)
    assert memo.path(project / "." / "results" / "..") == where  # one checkout, one memo
    doc = json.loads(where.read_text())
    assert set(doc) == {"about", "root", "inputs", "files"}
    assert doc["root"] == str(project.resolve())
    assert all(len(digest) == 64 for digest in doc["files"].values())


def test_without_an_override_the_memo_is_in_the_users_cache_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Each OS's own cache folder (on Linux $XDG_CACHE_HOME/mystery), as platformdirs says."""
    from platformdirs import user_cache_path

    monkeypatch.delenv(memo.CACHE_DIR_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert memo.cache_dir() == user_cache_path("mystery", appauthor=False)
    assert memo.path(tmp_path).parent == memo.cache_dir() / "publish"


def test_the_command_line_recomputes_only_when_asked(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from mystery.cli import app

    calls = _no_generation(monkeypatch)
    for args, expected in ((["--check"], []), (["--check", "--recompute"], ["generate"]),
                           ([], ["generate"]), (["--recompute"], ["generate", "generate"])):
        result = CliRunner().invoke(app, ["publish", *args, "--root", str(project)])
        assert result.exit_code == 0, result.output
        assert calls == expected, args
    assert "results/ is current" in CliRunner().invoke(
        app, ["publish", "--check", "--root", str(project)]).output
