"""A store that cannot be used is one clear message, exit 1, and nothing changed.

Each failure is made for real, not mocked: a damaged page, another SQLite client holding the
store, a read-only folder (a read-only tmpfs in a private mount namespace, which root cannot
write either), a file the user may not read (a user namespace where we are not root), and a
disk that fills up mid-run (a small tmpfs), after which the same command resumes exactly.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sqlite3
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from mystery.collect.verify import mismatches
from mystery.sandbox import SandboxControl
from mystery.store.store import Store
from tests.crash.crash_helpers import BRANDS, standalone_sandbox, write_study

MYSTERY = [sys.executable, "-m", "mystery"]


@pytest.fixture
def study(tmp_path: Path) -> Path:
    return write_study(tmp_path, BRANDS[:4], end=date(2026, 3, 3))


def _mystery(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MYSTERY, *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=180)


def _one_error(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def _in_namespace(script: str, *, user: bool = False) -> subprocess.CompletedProcess[str]:
    """Run ``script`` (sh) in a private mount namespace where we may mount a tmpfs, or with
    ``user`` as an unprivileged user who owns our files but has no capabilities."""
    flags = ["--user", "--map-user=1000", "--map-group=1000"] if user else ["-rm"]
    return subprocess.run(["unshare", *flags, "sh", "-c", script], capture_output=True,
                          text=True, timeout=300)


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def test_a_damaged_store_is_named_with_the_way_to_rescue_it(study: Path) -> None:
    with standalone_sandbox() as url:
        assert _mystery("run", study, "--sandbox-url", url, "--quiet", "--no-report",
                        cwd=study.parent).returncode == 0
    db = study.with_suffix(".db")
    with open(db, "r+b") as file:  # three pages of noise in the middle of the tables
        file.seek(4096 * 4)
        file.write(os.urandom(4096 * 3))
    before = _files(study.parent)
    for command in ("report", "export"):
        _one_error(_mystery(command, study, cwd=study.parent),
                   f"{db.name} is damaged (database disk image is malformed)", ".recover")
    assert _files(study.parent) == before


def test_a_store_held_by_another_sqlite_client_says_so_after_five_seconds(study: Path) -> None:
    assert _mystery("run", study, "--once", "--quiet", "--no-report",
                    cwd=study.parent).returncode == 0
    other = sqlite3.connect(study.with_suffix(".db"), isolation_level=None)
    try:
        other.execute("BEGIN EXCLUSIVE")
        result = _mystery("run", study, "--quiet", "--no-report", cwd=study.parent)
    finally:
        other.execute("ROLLBACK")
        other.close()
    _one_error(result, "is held by another program (database is locked", "close the other")


def _copy_into(folder: str, study: Path) -> str:
    names = [study.name, study.with_suffix(".db").name]
    return " && ".join(f"cp {shlex.quote(str(study.parent / n))} {folder}/" for n in names)


def test_a_read_only_folder_is_named_not_a_traceback(study: Path, tmp_path: Path) -> None:
    """run needs its lock file and journal; report reads, but SQLite's journal lives beside
    the store too. Both say which folder must be writable."""
    assert _mystery("run", study, "--once", "--quiet", "--no-report",
                    cwd=study.parent).returncode == 0
    mnt = tmp_path / "ro"
    mnt.mkdir()
    m = shlex.join(MYSTERY)
    result = _in_namespace(
        f"mount -t tmpfs -o size=4m tmpfs {mnt} && {_copy_into(str(mnt), study)} && "
        f"mount -o remount,ro {mnt} && cd {mnt} && "
        f"{m} run {study.name} --quiet --no-report; echo rc=$?; "
        f"{m} report {study.name}; echo rc=$?"
    )
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stdout.split() == ["rc=1", "rc=1"], result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 2, result.stderr
    assert "cannot create the study's lock file" in errors[0]
    assert "Read-only file system" in errors[0]
    assert "cannot be written: its folder" in errors[1] and "is read-only" in errors[1]


def test_a_store_the_user_may_not_read_names_the_permission(study: Path) -> None:
    assert _mystery("run", study, "--once", "--quiet", "--no-report",
                    cwd=study.parent).returncode == 0
    db = study.with_suffix(".db")
    db.chmod(0)
    try:
        result = _in_namespace(f"cd {study.parent} && {shlex.join(MYSTERY)} report "
                               f"{study.name}", user=True)
    finally:
        db.chmod(0o600)
    _one_error(result, f"cannot open {db.name}: Permission denied")
    assert "not a mystery store" not in result.stderr


def test_a_disk_that_fills_mid_run_stops_clearly_and_the_rerun_is_exact(
    study: Path, tmp_path: Path
) -> None:
    """The tmpfs is filled up after the first pass, all but a few pages: the run stops on a
    write, with the fix; space freed, the same command resumes and ends exact."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    m = shlex.join(MYSTERY)
    with standalone_sandbox() as url:
        run = f"{m} run {study.name} --sandbox-url {url} --quiet --no-report"
        result = _in_namespace(
            f"mount -t tmpfs -o size=8m tmpfs {mnt} && cp {study} {mnt}/ && cd {mnt} && "
            f"{run} --once && "
            "(dd if=/dev/zero of=filler bs=4k 2>/dev/null; true) && "
            "truncate -s -24k filler && "
            f"{run}; echo rc=$?; rm filler; {run}; echo rc=$?; cp *.db {out}/"
        )
        assert "Traceback" not in result.stderr, result.stderr
        assert result.stdout.split() == ["rc=1", "rc=0"], result.stderr
        errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
        assert len(errors) == 1 and "the disk that holds crash.db is full (" in errors[0], errors
        assert "run the same command again" in errors[0]
        with SandboxControl(url) as control, Store.open(out / study.with_suffix(".db").name,
                                                        create=False) as store:
            truth = control.posts()
            assert mismatches(truth, store) == []
            assert len(truth["posts"]) == len(store.probes())  # each probe posted once


@pytest.fixture(autouse=True)
def _namespaces() -> None:
    """These tests need unshare (util-linux) and unprivileged namespaces, as on CI."""
    assert shutil.which("unshare"), "util-linux's unshare is needed for the store tests"


def test_a_read_only_results_folder_is_one_message_and_nothing_changed(
    study: Path, tmp_path: Path
) -> None:
    with standalone_sandbox() as url:
        assert _mystery("run", study, "--sandbox-url", url, "--quiet", "--no-report",
                        cwd=study.parent).returncode == 0
    mnt = tmp_path / "results-ro"
    mnt.mkdir()
    result = _in_namespace(
        f"mount -t tmpfs -o size=4m tmpfs {mnt} && mkdir {mnt}/crash && echo old > "
        f"{mnt}/crash/timings.csv && mount -o remount,ro {mnt} && cd {study.parent} && "
        f"{shlex.join(MYSTERY)} report {study.name} --results {mnt}; echo rc=$?; "
        f"cat {mnt}/crash/timings.csv"
    )
    assert result.stdout.split()[-2:] == ["rc=1", "old"], result.stderr
    _one_error(subprocess.CompletedProcess([], 1, "", result.stderr), "cannot write",
               "Read-only file system", "nothing under results/ was changed")
