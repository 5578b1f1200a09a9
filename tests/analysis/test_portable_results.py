"""Results are the same on every machine: tables byte for byte, charts by what they draw.

A chart's bytes differ from one CPU to another (an SVG coordinate on a rounding tie moves by
one unit in the last place under numpy's other SIMD paths), so each results folder's
``charts.json`` records a fingerprint of what every chart draws and the hash of each file as
drawn. These tests hold that promise on the committed results, under numpy's code paths for
three CPU generations, and that a stale, missing or edited chart is still caught.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mystery.analysis import manifest
from mystery.analysis.charts import Bar
from mystery.analysis.report import write_report
from mystery.cli import app
from mystery.publish import check, publish
from mystery.timings import schema as timings
from mystery.timings.studyinfo import StudyInfo
from tests.analysis.synthetic import edit_slowest_answer

REPO = Path(__file__).resolve().parents[2]
MYSTERY = Path(sys.executable).with_name("mystery")
#: numpy's dispatch for AVX-512 (Ice Lake), x86-64-v4, and also x86-64-v3 (AVX2) switched off:
#: the code paths of three CPU generations on one machine.
FEATURE_SETS = ("", "AVX512_ICL X86_V4", "AVX512_ICL X86_V4 X86_V3")


def _git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t.invalid", *args],
                          cwd=root, capture_output=True, text=True, check=True)
    return done.stdout


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """The repository's studies/ and results/ as committed, in a git repository of their own."""
    for folder in ("studies", "results"):
        shutil.copytree(REPO / folder, tmp_path / folder,
                        ignore=shutil.ignore_patterns("*.db", "*.db-*", "*.lock"))
    shutil.copy(REPO / ".gitignore", tmp_path / ".gitignore")  # results/ has its .gitattributes
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", "-A")
    _git(tmp_path, "commit", "-q", "-m", "results as committed")
    return tmp_path


def _charts(root: Path) -> dict[str, tuple[int, bytes]]:
    return {str(p.relative_to(root)): (p.stat().st_mtime_ns, p.read_bytes())
            for suffix in ("png", "svg") for p in sorted((root / "results").rglob(f"*.{suffix}"))}


def _complains_of_cpu_features(stderr: str) -> bool:
    text = stderr.lower()
    return "cpu feature" in text or "npy_disable" in text


def _cpu_env(features: str) -> dict[str, str]:
    """The environment switching off ``features`` in numpy, keeping only the ones this numpy
    accepts on this CPU (some releases refuse to disable a feature the CPU lacks)."""
    env = {k: v for k, v in os.environ.items() if k != "NPY_DISABLE_CPU_FEATURES"}
    accepted = []
    for feature in features.split():
        done = subprocess.run([sys.executable, "-c", "import numpy"], capture_output=True,
                              text=True, env={**env, "NPY_DISABLE_CPU_FEATURES": feature})
        if done.returncode == 0:
            accepted.append(feature)
        else:
            assert _complains_of_cpu_features(done.stderr), done.stderr
    if accepted:
        env["NPY_DISABLE_CPU_FEATURES"] = " ".join(accepted)
    return env


def _mystery(root: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(MYSTERY), *args], cwd=root, env=env, capture_output=True,
                          text=True)


@pytest.mark.parametrize("features", FEATURE_SETS, ids=["native", "no-avx512", "no-avx2"])
def test_committed_results_are_current_and_the_demo_leaves_them_clean(
    tree: Path, features: str
) -> None:
    env = _cpu_env(features)
    before = _charts(tree)
    checked = _mystery(tree, env, "publish", "--check")
    assert checked.returncode == 0, checked.stderr
    assert "results/ is current" in checked.stderr
    demo = _mystery(tree, env, "run", "studies/demo.toml", "--quiet")  # its closing report
    assert demo.returncode == 0, demo.stderr
    assert "wrote results/demo/summary.csv" in demo.stderr
    assert "ack_by_brand" not in demo.stderr  # the chart's inputs did not change
    published = _mystery(tree, env, "publish")
    assert published.returncode == 0, published.stderr
    assert re.search(r"^0 of \d+ files changed", published.stderr, re.MULTILINE), published.stderr
    assert _git(tree, "status", "--porcelain") == ""
    assert _charts(tree) == before  # not rewritten: same bytes, same modification times


def test_a_changed_timing_makes_check_name_stale_tables_and_charts(tree: Path) -> None:
    edit_slowest_answer(tree / "results/uk-retail-2025/timings.csv")
    untouched = tree / "results/uk-retail-2026/ack_by_brand.svg"
    mtime = untouched.stat().st_mtime_ns
    stale = {str(o.path): o.state for o in check(tree) if o.state != "unchanged"}
    for name in ("uk-retail-2025/summary.csv", "uk-retail-2025/ack_by_brand.png",
                 "uk-retail-2025/ack_by_brand.svg", "uk-retail-2025/charts.json",
                 "uk-retail/yoy.csv", "uk-retail/survival.svg", "uk-retail/charts.json"):
        assert stale.get(f"results/{name}") == "stale", (name, stale)
    assert not any(path.startswith("results/uk-retail-2026/") for path in stale)
    result = CliRunner().invoke(app, ["publish", "--check", "--root", str(tree)])
    assert result.exit_code == 1
    assert "results/uk-retail-2025/summary.csv: stale" in result.output
    assert "results/uk-retail-2025/ack_by_brand.svg: stale" in result.output
    fixed = CliRunner().invoke(app, ["publish", "--root", str(tree)])
    assert fixed.exit_code == 0, fixed.output
    assert "wrote results/uk-retail-2025/ack_by_brand.png" in fixed.output
    assert "uk-retail-2026" not in fixed.output  # nothing of the other study was redrawn
    assert untouched.stat().st_mtime_ns == mtime
    assert {o.state for o in check(tree)} == {"unchanged"}


def test_an_edited_or_deleted_chart_is_caught_and_drawn_again(tree: Path) -> None:
    edited, deleted = tree / "results/uk-retail/yoy.svg", tree / "results/demo/sectors.png"
    edited.write_bytes(edited.read_bytes().replace(b"fastest", b"quickest"))
    deleted.unlink()
    states = {str(o.path): o.state for o in check(tree)}
    assert states["results/uk-retail/yoy.svg"] == "stale"
    assert states["results/uk-retail/yoy.png"] == "unchanged"
    assert states["results/demo/sectors.png"] == "missing"
    assert states["results/demo/charts.json"] == "unchanged"  # what the charts draw did not
    assert not deleted.exists()  # check draws nothing
    written = {str(o.path) for o in publish(tree) if o.state == "written"}
    assert {"results/uk-retail/yoy.svg", "results/demo/sectors.png"} <= written
    assert b"quickest" not in edited.read_bytes()
    assert {o.state for o in check(tree)} == {"unchanged"}


def test_publish_and_report_leave_current_charts_untouched(tree: Path) -> None:
    for path in (tree / "results").rglob("*.*g"):
        os.utime(path, ns=(1_000_000_000, 1_000_000_000))  # a rewrite would show
    before = _charts(tree)
    assert {o.state for o in publish(tree, workers=2)} == {"unchanged"}
    folder = tree / "results/demo"
    paths = write_report(timings.read_csv(folder / "timings.csv"), folder,
                         StudyInfo.read(folder))  # what 'mystery report' writes
    # Charts and their manifest are not rewritten (datapackage.json is a table, rewritten with
    # the same bytes, as the clean git status below shows).
    assert not [p for p in paths if p.suffix in (".png", ".svg", ".json")
                and p.name != "datapackage.json"]
    assert _charts(tree) == before
    assert _git(tree, "status", "--porcelain") == ""


def test_a_report_with_other_options_redraws_its_chart_and_keeps_the_folder_manifest(
    tree: Path,
) -> None:
    folder = tree / "results/demo"
    series_entries = {k: v for k, v in manifest.read(folder).items() if k != "ack_by_brand"}
    paths = write_report(timings.read_csv(folder / "timings.csv"), folder,
                         StudyInfo.read(folder), highlight=["Voltage"])
    assert {p.name for p in paths} >= {"ack_by_brand.png", "ack_by_brand.svg", "charts.json"}
    entries = manifest.read(folder)
    assert {k: v for k, v in entries.items() if k != "ack_by_brand"} == series_entries
    assert entries["ack_by_brand"].files["ack_by_brand.svg"] == manifest.file_hash(
        folder / "ack_by_brand.svg")
    states = {str(o.path): o.state for o in check(tree) if o.state != "unchanged"}
    assert states == {"results/demo/ack_by_brand.png": "stale",
                      "results/demo/ack_by_brand.svg": "stale",
                      "results/demo/charts.json": "stale"}


def test_options_are_part_of_a_charts_fingerprint(tree: Path) -> None:
    stale = {str(o.path) for o in check(tree, highlight=["Voltage"]) if o.state != "unchanged"}
    assert "results/demo/ranking-x.svg" in stale and "results/demo/sectors.png" in stale
    assert not [p for p in stale if p.endswith((".csv", ".md"))]  # tables ignore highlight
    by_median = {str(o.path) for o in check(tree, brand_stat="median") if o.state != "unchanged"}
    assert "results/uk-retail/ranking-x.png" in by_median


def test_a_warm_publish_neither_imports_matplotlib_nor_starts_a_process(tree: Path) -> None:
    script = (
        "import multiprocessing, sys\n"
        "from mystery.publish import check, publish\n"
        f"states = {{o.state for o in publish({str(tree)!r}, workers=None)}}\n"
        f"states |= {{o.state for o in check({str(tree)!r}, workers=None)}}\n"
        "print(sorted(states), 'matplotlib' in sys.modules, multiprocessing.active_children())\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True)
    assert done.stdout.split() == ["['unchanged']", "False", "[]"]


def test_a_fingerprint_ignores_the_last_bit_of_a_float_but_not_a_drawn_change() -> None:
    def bar(seconds: float) -> str:
        return manifest.fingerprint("ranking", "ack_by_brand", [Bar("B", seconds, 3, 3)],
                                    {"title": "t", "highlight": ()}, "3.10.9")

    tie = 343.03843750000004  # the coordinate that printed differently on two CPUs
    assert bar(tie) == bar(tie - 2 * sys.float_info.epsilon * tie)
    assert bar(tie) != bar(343.0385)
    assert bar(tie) != manifest.fingerprint("ranking", "ack_by_brand", [Bar("B", tie, 3, 3)],
                                            {"title": "t", "highlight": ()}, "3.11.0")
    with pytest.raises(TypeError, match="cannot fingerprint"):
        manifest.fingerprint("ranking", "x", [object()], {}, "3.10.9")


def test_an_edit_of_the_drawing_code_is_another_fingerprint(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The chart code's version is the hash of its source: no number to forget to bump."""
    def bar() -> str:
        return manifest.fingerprint("ranking", "ack_by_brand", [Bar("B", 60.0, 3, 3)], {},
                                    "3.10.9")

    before, code = bar(), manifest.chart_code()
    package = Path(manifest.__file__).resolve().parents[1]
    # A copy of the package's drawing code and house style, one file edited.
    for name in (*manifest.DRAWING_CODE, "analysis/house.mplstyle"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(package / name, tmp_path / name)
    edited = tmp_path / "durations.py"
    edited.write_text(edited.read_text().replace('f"{whole} s"', 'f"{whole}s"'))
    monkeypatch.setattr(manifest, "__file__", str(tmp_path / "analysis" / "manifest.py"))
    assert manifest.chart_code.__wrapped__() != code
    monkeypatch.setattr(manifest, "chart_code", manifest.chart_code.__wrapped__)
    assert bar() != before


def test_the_manifest_is_stable_sorted_json() -> None:
    entries = {"b": manifest.Entry("f2", {"b.svg": "2", "b.png": "1"}, "c1", "3.10.9"),
               "a": manifest.Entry("f1", {"a.png": "3"}, "c1", "3.10.9")}
    data = manifest.dumps(entries)
    assert data == manifest.dumps(dict(reversed(entries.items())))
    assert data.endswith(b"}\n") and b"\r" not in data
    doc = json.loads(data)
    assert list(doc["charts"]) == ["a", "b"]
    assert list(doc["charts"]["b"]["files"]) == ["b.png", "b.svg"]
