"""Stopping mystery from outside: SIGTERM ends a command the way Ctrl-C does.

Why SIGTERM is turned into ``KeyboardInterrupt``: ``kill``, a closing terminal's session
manager, systemd, Docker and CI runners cancelling a job all send SIGTERM, and Python's default
for it is to die on the spot, silently, skipping the ``finally`` blocks that stop an in-process
sandbox and close the store. As ``KeyboardInterrupt`` in the main thread it takes Ctrl-C's
path: a transaction in flight rolls back, the command's error handling prints one line (the
store is consistent; run the same command again to resume) and exits 130. The store never
depended on it — every state change is one transaction, safe even against SIGKILL — but the
person or script that stopped the run deserves the same answer either way.

Windows has ``signal.SIGTERM``, but nothing outside the process can deliver it there (another
process's "kill" terminates it outright); a console's Ctrl-Break (``SIGBREAK``, Windows only) is
the closest thing, and gets the same treatment. Both are looked up by name, so each platform
installs only what it has.
"""

from __future__ import annotations

import signal
from types import FrameType

INTERRUPTED = "Interrupted. The store is consistent: run the same command again to resume."
"""What a stopped command says: the store only ever holds whole transactions."""

_STOP_SIGNALS = ("SIGTERM", "SIGBREAK")


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def stop_like_ctrl_c() -> None:
    """Make SIGTERM (and Ctrl-Break on Windows) raise ``KeyboardInterrupt`` in the main thread.

    Called first thing by the ``mystery`` command, from the main thread (the only one Python
    lets install a handler). A signal the parent chose to ignore stays ignored, as Python does
    for SIGINT: whoever started us with ``nohup`` or the like meant it.
    """
    for name in _STOP_SIGNALS:
        number = getattr(signal, name, None)
        if number is not None and signal.getsignal(number) is not signal.SIG_IGN:
            signal.signal(number, _interrupt)


def ignore_stops() -> None:
    """Ignore Ctrl-C and SIGTERM from now on: called once the command has answered (its
    result or its one-line message is written, its exit code chosen), for what is left, the
    interpreter closing connection pools and threads. A stop that lands there has nothing
    left to stop, and would only print a traceback from some library's cleanup beneath the
    command's last word, or change the exit code of work that was done."""
    for name in ("SIGINT", *_STOP_SIGNALS):
        number = getattr(signal, name, None)
        if number is not None:
            signal.signal(number, signal.SIG_IGN)


def keep_exit_code() -> None:
    """Let a command that caught an interrupt end with the exit code it chose (130).

    CPython marks a ``KeyboardInterrupt`` that passed through any ``exec`` of a string as
    unhandled, and dataclasses make their methods that way, so an interrupt during an import
    often does; ``python -m mystery`` then ends by SIGINT (-2 to a parent process) although the
    interrupt was caught and answered. Evaluating any string clears the mark (CPython's
    ``run_eval_code_obj`` resets it first), so this is called just before exiting 130.
    """
    exec("None")
