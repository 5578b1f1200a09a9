"""The ``mystery`` command (and ``python -m mystery``): signals first, then the CLI.

Why not straight into :mod:`mystery.cli`: importing it (Typer and the commands) takes a few
hundred milliseconds, and a Ctrl-C or SIGTERM in that window would otherwise print Python's
traceback or end silently. Installed before that import, the handling is the same at any
moment; nothing has been opened yet, so the usual message is true then too.
"""

from __future__ import annotations

import sys

from mystery.interrupts import INTERRUPTED, ignore_stops, keep_exit_code, stop_like_ctrl_c


def main() -> None:
    """Console-script entry point."""
    stop_like_ctrl_c()
    try:
        from mystery.cli import main as cli_main
    except KeyboardInterrupt:
        sys.stderr.write(INTERRUPTED + "\n")
        keep_exit_code()
        raise SystemExit(130) from None
    try:
        cli_main()
    finally:
        ignore_stops()  # the command has answered: nothing is left for a stop to stop


if __name__ == "__main__":
    main()
