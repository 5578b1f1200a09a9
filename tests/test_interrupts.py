"""Stopping mystery from outside: SIGTERM is Ctrl-C, and every interrupt gets one message.

The end-to-end proof (real signals at random moments of the demo, and the resume that follows)
is ``tests/crash/test_resume_in_process.py``; these pin the pieces down where a signal's
timing cannot be aimed: an interrupt while Typer parses the command line, and one inside a
command, each said exactly once.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mystery import cli
from mystery.interrupts import INTERRUPTED, stop_like_ctrl_c


@pytest.fixture
def handlers() -> Iterator[None]:
    """Put SIGTERM back as it was: the test process must not keep mystery's handler."""
    before = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, before)


def test_sigterm_raises_keyboard_interrupt_in_the_main_thread(handlers: None) -> None:
    stop_like_ctrl_c()
    with pytest.raises(KeyboardInterrupt):
        signal.raise_signal(signal.SIGTERM)


def test_a_sigterm_the_parent_ignored_stays_ignored(handlers: None) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    stop_like_ctrl_c()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN


def _main(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    monkeypatch.setattr(sys, "argv", ["mystery", *args])
    with pytest.raises(SystemExit) as stopped:
        cli.main()
    assert isinstance(stopped.value.code, int)
    return stopped.value.code


def test_an_interrupt_while_typer_parses_gets_the_message(
    handlers: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    import typer.core

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(typer.core.TyperArgument, "process_value", interrupted)
    assert _main(monkeypatch, "validate", str(tmp_path / "study.toml")) == 130
    assert capsys.readouterr().err == INTERRUPTED + "\n"


def test_an_interrupt_inside_a_command_is_said_once(
    handlers: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    import mystery.study.load

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(mystery.study.load, "load_study", interrupted)
    assert _main(monkeypatch, "validate", str(tmp_path / "study.toml")) == 130
    assert capsys.readouterr().err == INTERRUPTED + "\n"


STOPPER = """\
import signal, sys
from mystery.interrupts import keep_exit_code
try:
    exec("import signal\\nsignal.raise_signal(signal.SIGINT)\\nwhile True: pass")
except KeyboardInterrupt:
    if sys.argv[1:] == ["keep"]:
        keep_exit_code()
    raise SystemExit(130)
"""


def test_python_m_ends_with_the_exit_code_chosen_after_a_caught_interrupt(
    tmp_path: Path,
) -> None:
    """An interrupt that passed through ``exec`` of a string (as one during a dataclass's
    creation does) would make ``python -m`` die by SIGINT although it was caught: kept, the
    exit code is the 130 the command chose."""
    (tmp_path / "stopper.py").write_text(STOPPER, encoding="utf-8")

    def run(*args: str) -> int:
        return subprocess.run([sys.executable, "-m", "stopper", *args], cwd=tmp_path,
                              timeout=60).returncode

    # CPython's mark, without the fix (should this fail, CPython fixed it: drop the helper)
    assert run() == -signal.SIGINT
    assert run("keep") == 130


LATE_STOP = """\
import atexit, signal, sys
import mystery.cli

def answered() -> None:
    sys.stderr.write("answered\\n")
    raise SystemExit(0)

mystery.cli.main = answered
# A stop that lands while the interpreter tears down (a connection pool closing, say).
atexit.register(lambda: (signal.raise_signal(signal.SIGINT),
                         signal.raise_signal(signal.SIGTERM)))
from mystery.__main__ import main
main()
"""


def test_a_stop_after_the_command_answered_changes_nothing(tmp_path: Path) -> None:
    """Once a command has written its answer and chosen its exit code, a Ctrl-C or SIGTERM
    during the interpreter's teardown prints no traceback and keeps the exit code."""
    (tmp_path / "late.py").write_text(LATE_STOP, encoding="utf-8")
    done = subprocess.run([sys.executable, "late.py"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)
    assert (done.returncode, done.stderr) == (0, "answered\n")
