"""Helpers for the crash tests: a study, and a standalone sandbox in its own process.

Why a process: the runner is SIGKILLed over and over while the platform must live on, exactly
as X does while a researcher's laptop reboots. Imported as ``tests.crash.crash_helpers``.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import httpx

from tests import studybuilder
from tests.studybuilder import study_data

PYTHON = sys.executable

STUDY = study_data(
    name="crash",
    channels={"x": {"account": "crash_researcher", "endpoint": "sandbox", "mode": "auto",
                    "poll_every": "30m"}},
    questions=[{"id": "delivery", "text": "Hi {brand}, do you deliver on Sundays?"},
               {"id": "stock", "text": "Hello {brand}, is the blue kettle in stock?"},
               {"id": "hours", "text": "Hi {brand}, when do you open tomorrow?"}],
    schedule={"start": date(2026, 3, 2), "end": date(2026, 3, 4), "probes_per_brand": 3,
              "min_gap": "4h", "seed": 11,
              "windows": [{"days": "mon-sun", "start": "09:00", "end": "17:00"}]},
    sandbox={"seed": 5, "profiles": {
        "fast": {"ack_median": "10m"},
        "holding": {"ack_median": "30m", "resolve_after": "2h", "holding_share": 1.0},
        "never": {"answer_rate": 0.0},
        "patchy": {"answer_rate": 0.5, "ack_median": "3h"},
        "alias": {"ack_median": "20m", "alias_share": 1.0},
        "slow": {"ack_median": "30h", "ack_spread": 0.3},
    }},
)

BRANDS = [
    ("Alpha", "alpha", "fast", []),
    ("Bravo", "bravo", "holding", []),
    ("Charlie", "charlie", "never", []),
    ("Delta", "delta", "patchy", []),
    ("Echo", "echo", "alias", ["echohelp"]),
    ("Foxtrot", "foxtrot", "slow", []),
    ("Golf", "golf", "holding", []),
    ("Hotel", "hotel", "never", []),
]
"""8 brands × 3 probes: fast, holding ("please DM us") then answering, never answering, half
answering, answering from an alias, and answering past the 2-day cutoff (censored)."""


def write_study(folder: Path, brands: list[tuple[str, str, str, list[str]]] = BRANDS,
                name: str = "crash.toml", **schedule: Any) -> Path:
    """The study with ``brands``, and each ``schedule`` key (e.g. ``probes_per_brand=1``)
    changed."""
    rows: list[dict[str, Any]] = []
    for brand, handle, profile, aliases in brands:
        rows.append({"name": brand, "handles": {"x": handle}, "profile": profile})
        if aliases:
            rows[-1]["aliases"] = {"x": aliases}
    return studybuilder.write_study(folder, STUDY, name, brands=rows,
                                    schedule={**STUDY["schedule"], **schedule})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def standalone_sandbox(*options: str) -> Iterator[str]:
    """``python -m mystery sandbox`` on a free port, with ``options``; yields its URL once it
    answers."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [PYTHON, "-m", "mystery", "sandbox", "--port", str(port), *options],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        with httpx.Client(timeout=1) as http:
            while True:
                try:
                    if http.get(f"{url}/_sandbox/clock").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert process.poll() is None, "the sandbox exited on start"
                assert time.monotonic() < deadline, "the sandbox did not start"
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run_command(study: Path, url: str, db: Path) -> list[str]:
    return [PYTHON, "-m", "mystery", "run", str(study), "--db", str(db), "--sandbox-url", url,
            "--quiet", "--no-report"]


@contextmanager
def sigint_heard() -> Iterator[None]:
    """Children inherit an ignored SIGINT (a test run from a background job) and Python then
    leaves it ignored: let them hear Ctrl-C as a terminal's foreground job does."""
    before = signal.getsignal(signal.SIGINT)
    if before is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        if before is signal.SIG_IGN:
            signal.signal(signal.SIGINT, before)


def hears_signals(runner: subprocess.Popen[str]) -> bool:
    """Whether ``mystery`` has installed its SIGTERM handling (its first act), as the kernel
    tells (Linux); elsewhere, assumed after a moment of start-up."""
    status = Path(f"/proc/{runner.pid}/status")
    if not status.exists():
        time.sleep(0.5)
        return True
    for line in status.read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) >> (signal.SIGTERM - 1) & 1)
    return False
