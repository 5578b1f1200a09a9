"""One runner per study: a second ``mystery run`` is refused, naming who holds the study; a lock
left by a runner that died (SIGKILL, power cut) is taken over safely, with a notice."""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mystery.cli import app
from mystery.collect.run import run_study
from mystery.errors import StoreLockedError
from mystery.store.lock import StudyLock, lock_path
from tests.crash.crash_helpers import BRANDS, write_study

HOLD = """
import sys, time
from mystery.store.lock import StudyLock
lock = StudyLock(sys.argv[1]).acquire()
print("held", flush=True)
time.sleep(60)
"""


@pytest.fixture
def study(tmp_path: Path) -> Path:
    return write_study(tmp_path, BRANDS[:2], end=date(2026, 3, 2), probes_per_brand=1)


def _hold_in_another_process(path: Path) -> subprocess.Popen[str]:
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE,
                              text=True)
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"
    return holder


def test_a_second_runner_is_refused_with_who_holds_the_study(study: Path) -> None:
    lock = lock_path(study.with_suffix(".db"))
    holder = _hold_in_another_process(lock)
    try:
        result = CliRunner().invoke(app, ["run", str(study), "--quiet", "--no-report"])
    finally:
        holder.kill()
        holder.wait()
        assert holder.stdout is not None
        holder.stdout.close()
    assert result.exit_code == 1
    message = result.output
    assert message.startswith("Error: another 'mystery run' is using this study's store")
    assert f"pid {holder.pid} on host {socket.gethostname()}, since 20" in message
    assert str(lock) in message and "stop it (it resumes safely)" in message
    assert not study.with_suffix(".db").exists()  # refused before touching the store


def test_a_lock_left_by_a_killed_runner_is_taken_over(study: Path) -> None:
    lock = lock_path(study.with_suffix(".db"))
    holder = _hold_in_another_process(lock)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert holder.stdout is not None
    holder.stdout.close()
    assert json.loads(lock.read_text())["pid"] == holder.pid  # its body is still there

    notices: list[str] = []
    _, result = run_study(study, on_notice=notices.append)
    assert result.finished
    assert notices[0].startswith(f"took over the lock of a runner that is no longer running "
                                 f"(pid {holder.pid} on host {socket.gethostname()}, since 20")
    assert lock.read_text() == ""  # released when the run ended


def test_a_lock_is_released_for_the_next_run(study: Path) -> None:
    with StudyLock(lock_path(study.with_suffix(".db"))) as first:
        assert first.taken_over is None
    with StudyLock(lock_path(study.with_suffix(".db"))) as second:
        assert second.taken_over is None  # a clean release is no stale lock


def test_without_flock_a_live_holder_refuses_and_a_dead_one_is_taken_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_flock(fd: int, how: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    # What a file system without locks does to filelock's flock (some network mounts).
    monkeypatch.setattr("fcntl.flock", no_flock)
    path = tmp_path / "s.db.lock"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    body = {"host": socket.gethostname(), "started": "2026-03-02T09:00:00.000Z"}
    path.write_text(json.dumps({"pid": int(dead.stdout), **body}))
    with StudyLock(path) as taken:
        assert taken.taken_over is not None and taken.taken_over.pid == int(dead.stdout)
    path.write_text(json.dumps({"pid": os.getppid(), **body}))  # alive: the test's parent
    with pytest.raises(StoreLockedError, match=f"pid {os.getppid()} on host"):
        StudyLock(path).acquire()
