"""A command run under a real pseudo-terminal, read as a terminal would get it.

Why a module of its own: the tests of the live view and of ``mystery code`` both need a
``mystery`` whose stdin, stdout and stderr are a pty (stdlib ``os.openpty``) with a terminal's
``TERM`` and size, and whose screen is read back as lines.
"""

from __future__ import annotations

import fcntl
import os
import re
import select
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

MYSTERY = [sys.executable, "-m", "mystery"]
ROWS, COLUMNS = 50, 100
TIMEOUT = 180.0  # seconds for one command: generous, the machine may be busy

# Cursor movement and erasing (rich redraws a frame by moving up over the last one): read as
# line breaks, so each line of each frame stands alone. Everything else (styles, the cursor's
# visibility) is dropped.
_MOVES = re.compile(rb"\x1b\[[0-9;]*[ABCDEFGHJK]|\r")
_OTHER = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\x1b[()][A-Za-z0-9]")
# An SGR sequence that sets a colour: 30-37/90-97 (foreground), 40-47/100-107 (background),
# 38/48 (256 colours, truecolor); bold, italic, reverse and resets are not colours.
SGR = re.compile(rb"\x1b\[([0-9;]*)m")
_COLOUR_CODES = {*range(30, 38), 38, *range(40, 48), 48, *range(90, 98), *range(100, 108)}

def screen_lines(raw: bytes) -> list[str]:
    text = _OTHER.sub(b"", _MOVES.sub(b"\n", raw)).decode("utf-8", errors="replace")
    return [line.rstrip() for line in text.split("\n")]


def has_colour(raw: bytes) -> bool:
    for match in SGR.finditer(raw):
        codes = [int(c) for c in match.group(1).split(b";") if c]
        if any(c in _COLOUR_CODES for c in codes):
            return True
    return False


class Terminal:
    """One command on a pseudo-terminal: what it writes is read as a terminal would get it;
    keys are typed into it."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str] | None = None,
                 columns: int = COLUMNS) -> None:
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, columns, 0, 0))
        environment = {k: v for k, v in os.environ.items()
                       if k not in ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE",
                                    "TTY_INTERACTIVE", "COLUMNS", "LINES")}
        environment.update({"TERM": "xterm-256color", **(env or {})})
        self.process = subprocess.Popen(
            [*MYSTERY, *args], cwd=cwd, env=environment, stdin=slave, stdout=slave,
            stderr=slave, start_new_session=True,
        )
        self._slave_name = os.ttyname(slave)
        os.close(slave)
        self.master = master
        self.raw = b""
        self._closed = False

    def _read(self, until: float) -> None:
        """Read what is there (waiting until ``until`` at most); notes the end of output."""
        ready, _, _ = select.select([self.master], [], [], max(0.0, until - time.monotonic()))
        if not ready:
            return
        try:
            chunk = os.read(self.master, 65536)
        except OSError:  # EIO: every copy of the pty's other end is closed
            chunk = b""
        if chunk:
            self.raw += chunk
        else:
            self._closed = True

    def expect(self, text: str, times: int = 1) -> None:
        """Wait until ``text`` has been on the screen ``times`` times."""
        deadline = time.monotonic() + TIMEOUT
        while self.screen().count(text) < times:
            assert not self._closed, f"{text!r} never appeared:\n{self.screen()}"
            assert time.monotonic() < deadline, f"no {text!r} in time:\n{self.screen()}"
            self._read(deadline)

    def type(self, text: str) -> None:
        """Type a line's worth of keys, as into a prompt that reads a line."""
        os.write(self.master, text.encode())

    def press(self, key: str) -> None:
        """Press one key once the program reads keys one by one (raw mode, as a terminal's
        user would wait for): a key typed before that sits in the line buffer, unread."""
        deadline = time.monotonic() + TIMEOUT
        fd = os.open(self._slave_name, os.O_RDWR | os.O_NOCTTY)
        try:
            while termios.tcgetattr(fd)[3] & termios.ICANON:
                assert time.monotonic() < deadline, f"never read a key:\n{self.screen()}"
                time.sleep(0.01)
        finally:
            os.close(fd)
        os.write(self.master, key.encode())

    def finish(self) -> int:
        """Read to the end; the exit code."""
        deadline = time.monotonic() + TIMEOUT
        while not self._closed:
            if time.monotonic() > deadline:
                pytest.fail(f"still running after {TIMEOUT} s:\n{self.screen()}")
            self._read(deadline)
        return self.process.wait(timeout=TIMEOUT)

    def close(self) -> None:
        """End the program if a failed test left it running, and free the pty."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=TIMEOUT)
        os.close(self.master)

    def screen(self) -> str:
        return "\n".join(screen_lines(self.raw))


@contextmanager
def terminal(args: list[str], cwd: Path, env: dict[str, str] | None = None,
             columns: int = COLUMNS) -> Iterator[Terminal]:
    opened = Terminal(args, cwd, env, columns)
    try:
        yield opened
    finally:
        opened.close()


def run_in_terminal(args: list[str], cwd: Path, env: dict[str, str] | None = None,
                    columns: int = COLUMNS) -> tuple[int, bytes]:
    with terminal(args, cwd, env, columns) as opened:
        return opened.finish(), opened.raw
