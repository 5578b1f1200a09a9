"""Benchmarks for collecting (run apart: ``.venv/bin/pytest tests/perf -s``).

- a 10,000-probe sandbox study (500 brands × 20 probes) runs in under 60 s and 300 MB;
- one poll cycle costs one mentions request, however many probes are open (1,000 here);
- ``mystery --help`` costs no more than 1.5 × ``python -c "import typer"``.

Each prints its figures for README.md's Performance section.
"""

from __future__ import annotations

import resource
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from mystery.channels.catchup import GappedPoll
from mystery.channels.x import XChannel
from mystery.clock import VirtualClock
from mystery.collect.connect import world_start
from mystery.collect.runner import Runner
from mystery.collect.together import run_together
from mystery.sandbox.server import SandboxServer
from mystery.sandbox.spec import WorldSpec
from mystery.store.store import Store
from mystery.study.load import load_study
from mystery.study.plan import make_plan
from tests.perf.studies import write_big_study

PYTHON = sys.executable
MYSTERY = [PYTHON, "-m", "mystery"]


def _child_run(args: list[str]) -> tuple[float, float, subprocess.CompletedProcess[str]]:
    """Wall seconds and peak RSS (MB) of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # ru_maxrss of children is the largest child so far: valid when this is the largest.
    return wall, max(peak, before) / 1024, done


def test_ten_thousand_probe_study_under_a_minute(tmp_path: Path) -> None:
    study = write_big_study(tmp_path, brands=500, probes=20)
    wall, peak_mb, done = _child_run([*MYSTERY, "run", str(study), "--quiet", "--no-report"])
    assert done.returncode == 0, done.stderr
    assert "10000/10000 probes sent" in done.stderr
    print(f"\n10,000-probe sandbox study: {wall:.1f} s wall, {peak_mb:.0f} MB peak RSS")
    assert wall < 60
    assert peak_mb < 300


class _CountingX(XChannel):
    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.polls = 0

    def poll(self, cursor: str | None, now: datetime) -> GappedPoll:
        self.polls += 1
        return super().poll(cursor, now)


def test_one_read_request_per_poll_with_a_thousand_open_probes(tmp_path: Path) -> None:
    """1,000 brands × 1 probe, all sent within a morning, slow to answer: every poll covers
    every open probe with one mentions request (more only when >100 replies arrive at once)."""
    path = write_big_study(tmp_path, brands=1000, probes=1)
    text = path.read_text(encoding="utf-8")
    text = text.replace('end = 2026-03-29', 'end = 2026-03-02').replace(
        'min_gap = "1h"', 'min_gap = "1m"'
    ).replace('ack_median = "10m"', 'ack_median = "60h"').replace(
        'ack_median = "8h"', 'ack_median = "60h"'
    ).replace('ack_median = "30m"', 'ack_median = "60h"')
    path.write_text(text, encoding="utf-8")
    study = load_study(path).study
    with SandboxServer() as sandbox, Store.open(tmp_path / "s.db") as store:
        sandbox.world.configure(WorldSpec.from_study(study, world_start(study)))
        channel = _CountingX(study.channels["x"].account, sandbox.url, sandbox=True)
        channel.open()
        clock: VirtualClock = sandbox.world.clock
        store.initialise(study, make_plan(study))
        runner = Runner(study, store, {"x": channel}, clock)
        open_most = 0
        sandbox.stats.reset()
        while not run_together([runner], once=True).finished:
            open_most = max(open_most, store.count(("sent",)))
            wake = runner.next_event()
            assert wake is not None
            clock.sleep_until(wake.at)
        mentions = sandbox.stats.snapshot().get("GET /2/users/:id/mentions", 0)
        channel.close()
    print(f"\n{channel.polls} polls, {mentions} mentions requests "
          f"({mentions / channel.polls:.3f} per poll), up to {open_most} probes open at once")
    assert open_most == 1000
    assert mentions / channel.polls < 1.05


def _median_seconds(args: list[str], runs: int = 7) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(args, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def test_help_is_fast() -> None:
    baseline = _median_seconds([PYTHON, "-c", "import typer"])
    helped = _median_seconds([*MYSTERY, "--help"])
    print(f"\nmystery --help {helped * 1000:.0f} ms; import typer {baseline * 1000:.0f} ms; "
          f"ratio {helped / baseline:.2f}")
    assert helped <= 1.5 * baseline
