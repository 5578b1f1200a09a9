"""Benchmark: ``publish`` on a synthetic series of 1,000,000 probes over 10 years.

Run apart from the unit tests (pyproject's addopts ignore tests/perf):

    .venv/bin/pytest tests/perf/test_publish_perf.py -o addopts="" -s

The series is 10 synthetic studies (2017–2026) of 100 brands × 2 channels × 500 probes each.
Publish regenerates each study's report and the series' tables and charts (15 charts, drawn
in a pool of one process per CPU while the tables are computed). The test measures wall time,
CPU seconds (the publishing process, the pool's fork server and its workers) and the peak
resident memory of a fresh process (``resource.getrusage`` of the child, so earlier tests
cannot inflate it), prints them with the machine's load, and holds them under 10 s and 2 GB.
The machine's load matters: on a shared machine the wall time grows with other work.

Then, nothing changed, a *warm* ``publish`` and ``publish --check`` (the memo of the last
publish, in the user's cache folder, vouches for every file: nothing recomputed, no chart
drawn) each take at most 2 × the time of reading the series' timings CSVs with polars and
grouping them by study, brand and channel, measured side by side: subprocesses, the median of
three runs each, interleaved so that the machine's load falls on all alike. The check of a
fresh clone, which has no memo (``--check --recompute``: every table recomputed), is measured
the same way and printed; its figure is in the README, with no target of its own.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

YEARS = range(2017, 2027)
BRANDS, CHANNELS, PROBES_PER_BRAND = 100, ("x", "email"), 500


def _build(root: Path) -> int:
    from tests.analysis.synthetic import make_study

    total = 0
    for year in YEARS:
        df = make_study(
            root,
            series="bench",
            year=year,
            brands=BRANDS,
            channels=CHANNELS,
            probes_per_brand=PROBES_PER_BRAND,
            seed=11,
        )
        total += df.height
    return total


@pytest.fixture(scope="module")
def series(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The million probes, built once for both tests."""
    root = tmp_path_factory.mktemp("bench")
    assert _build(root) == 1_000_000
    return root


def test_publish_a_million_probes_in_under_ten_seconds(series: Path) -> None:
    tmp_path, probes = series, 1_000_000
    script = textwrap.dedent(f"""
        import json, multiprocessing.forkserver, time
        start = time.perf_counter()
        from mystery.publish import publish
        outcomes = publish({str(tmp_path)!r}, workers=None)
        seconds = time.perf_counter() - start
        # Chart workers are children of the fork server; once it is stopped and waited for,
        # their CPU time counts in this process's children, and so in the test's.
        getattr(multiprocessing.forkserver._forkserver, "_stop", lambda: None)()
        print(json.dumps({{"seconds": seconds, "files": len(outcomes)}}))
    """)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # ru_maxrss of children is the largest single process (the publishing one; chart workers
    # are smaller), not a sum; the CPU seconds include the fork server and the chart workers.
    peak_mib = after.ru_maxrss / 1024
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(
        f"\npublish: {probes:,} probes, {len(YEARS)} years, {result['files']} files: "
        f"{result['seconds']:.2f} s wall (imports included), {cpu:.1f} CPU-s, "
        f"peak RSS {peak_mib:.0f} MiB; {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.1f}"
    )
    assert result["seconds"] < 10
    assert peak_mib < 2048


_BASELINE = """
import sys, time
start = time.perf_counter()
from pathlib import Path
import polars as pl
files = sorted(Path(sys.argv[1]).glob("results/*/timings.csv"))
df = pl.concat([pl.read_csv(f) for f in files])
df.group_by(["study", "brand", "channel"]).agg(pl.len(), pl.col("ack_seconds").mean())
print(time.perf_counter() - start)
"""
_COMMAND = """
import sys, time
start = time.perf_counter()
from mystery.cli import main
sys.argv = ["mystery", *sys.argv[1:]]
try:
    main()
except SystemExit as done:
    assert not done.code, done.code
print(time.perf_counter() - start)
"""


def _seconds(args: list[str]) -> float:
    done = subprocess.run([sys.executable, *args], capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def test_warm_publish_and_check_cost_at_most_twice_reading_the_timings(series: Path) -> None:
    import statistics

    root = series
    _seconds(["-c", _COMMAND, "publish", "--root", str(root)])  # warm (and drawn, if cold)
    runs: dict[str, list[float]] = {"read": [], "publish": [], "check": [], "recompute": []}
    for _ in range(3):
        runs["read"].append(_seconds(["-c", _BASELINE, str(root)]))
        runs["publish"].append(_seconds(["-c", _COMMAND, "publish", "--root", str(root)]))
        runs["check"].append(_seconds(["-c", _COMMAND, "publish", "--check", "--root",
                                       str(root)]))
        runs["recompute"].append(_seconds(["-c", _COMMAND, "publish", "--check", "--recompute",
                                           "--root", str(root)]))
    median = {name: statistics.median(times) for name, times in runs.items()}
    ratio = {name: median[name] / median["read"] for name in median}
    print(f"warm publish {median['publish']:.2f} s, warm publish --check {median['check']:.2f} s, "
          f"publish --check --recompute {median['recompute']:.2f} s, reading + grouping the "
          f"timings {median['read']:.2f} s (medians of 3; {ratio['publish']:.2f} x, "
          f"{ratio['check']:.2f} x and {ratio['recompute']:.2f} x); load average "
          f"{os.getloadavg()[0]:.1f}")
    assert median["publish"] <= 2 * median["read"]
    assert median["check"] <= 2 * median["read"]
