"""Benchmark for team studies on PostgreSQL (run apart:
``.venv/bin/pytest tests/perf -o addopts="" -s -k postgres``).

A 10,000-probe sandbox study over 3 accounts (one per channel: x, mastodon, bluesky; 167 brands
× 20 probes × 3 channels) run by 3 runners on one PostgreSQL store, against the same study run
by 1 runner on SQLite, side by side in one run, each against its own standalone sandbox. Target:
the team within 1.5 × the single runner's wall time. Also reported: the store's statements per
probe on PostgreSQL (``pg_stat_statements``: each is one round trip to the server, or less when
psycopg pipelines an ``executemany``). ``TEAM_BENCH_BRANDS`` scales it down for a quick
look (not ``MYSTERY_*``: the tests' clean room removes those).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

from tests.crash.crash_helpers import standalone_sandbox
from tests.postgres import PostgresServer
from tests.studybuilder import write_study

PYTHON = sys.executable
ACCOUNTS = {"x": "bench_a", "mastodon": "bench_b", "bluesky": "bench-c.bsky.social"}


def _study(folder: Path, brands: int, probes: int = 20) -> Path:
    rows = ["name,sector,country,x,mastodon,bluesky,profile"]
    profiles = ["fast", "slow", "holding", "silent"]
    for i in range(brands):
        h = f"brand{i:04d}"
        rows.append(f"Brand {i:04d},sector{i % 5},UK,{h},help@{h}.example,{h}.bsky.social,"
                    f"{profiles[i % 4]}")
    (folder / "team-brands.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return write_study(
        folder, filename="team.toml", name="team", cutoff="3d", brands_csv="team-brands.csv",
        brands=None,
        channels={c: {"account": a, "endpoint": "sandbox", "mode": "auto", "poll_every": "15m"}
                  for c, a in ACCOUNTS.items()},
        questions=[{"id": f"q{i:02d}", "text": f"Hi {{brand}}, question {i}: can you help?"}
                   for i in range(probes)],
        schedule={"start": date(2026, 3, 2), "end": date(2026, 4, 26),
                  "probes_per_brand": probes, "min_gap": "1h", "seed": 1,
                  "windows": [{"days": "daily", "start": "08:00", "end": "20:00"}]},
        sandbox={"profiles": {
            "fast": {"ack_median": "10m"},
            "slow": {"ack_median": "8h"},
            "holding": {"ack_median": "30m", "holding_share": 1.0, "resolve_after": "2h"},
            "silent": {"answer_rate": 0.0},
        }},
    )


def _run(study: Path, db: str, sandbox: str, *extra: str) -> list[str]:
    return [PYTHON, "-m", "mystery", "run", str(study), "--db", db, "--sandbox-url", sandbox,
            "--quiet", "--no-report", *extra]


def test_three_runners_on_postgres_against_one_on_sqlite(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    brands = int(os.environ.get("TEAM_BENCH_BRANDS", "167"))
    study = _study(tmp_path, brands)
    probes = brands * 20 * len(ACCOUNTS)
    url = postgres_server.database()
    dbname = url.rsplit("/", 1)[1]
    postgres_server.psql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements", dbname)

    # The runners' own pace, as measured before the fair clock: it would make them take turns.
    with standalone_sandbox() as alone, standalone_sandbox("--no-fair-clock") as team:
        start = time.perf_counter()
        done = subprocess.run(_run(study, str(tmp_path / "one.db"), alone), capture_output=True,
                              text=True, check=False)
        sqlite_wall = time.perf_counter() - start
        assert done.returncode == 0, done.stderr[-2000:]

        postgres_server.psql("SELECT pg_stat_statements_reset()", dbname)
        start = time.perf_counter()
        runners = [subprocess.Popen(_run(study, url, team, "--account", a),
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                    text=True) for a in ACCOUNTS.values()]
        for runner in runners:
            _, err = runner.communicate(timeout=3600)
            assert runner.returncode == 0, err[-2000:]
        team_wall = time.perf_counter() - start
    statements = int(postgres_server.psql(
        "SELECT sum(calls) FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid "
        f"WHERE d.datname = '{dbname}'", dbname).strip() or 0)
    ratio = team_wall / sqlite_wall
    print(f"\n{probes}-probe study over 3 accounts: 1 runner on SQLite {sqlite_wall:.1f} s; "
          f"3 runners on PostgreSQL {team_wall:.1f} s ({ratio:.2f} ×); "
          f"{statements} statements on PostgreSQL, {statements / probes:.1f} per probe")
    assert ratio <= 1.5


X_ACCOUNTS = ["bench_a", "bench_b", "bench_c"]


def _x_study(folder: Path, brands: int, accounts: list[str], probes: int = 20) -> Path:
    """The same brands and questions on X alone, from ``accounts``: every brand is asked from
    all of them, so the runners share every brand."""
    rows = ["name,sector,country,x,profile"]
    profiles = ["fast", "slow", "holding", "silent"]
    for i in range(brands):
        rows.append(f"Brand {i:04d},sector{i % 5},UK,brand{i:04d},{profiles[i % 4]}")
    (folder / "x-brands.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return write_study(
        folder, filename=f"x{len(accounts)}.toml", name="team", cutoff="3d",
        brands_csv="x-brands.csv", brands=None,
        channels={"x": {"accounts": accounts, "endpoint": "sandbox", "mode": "auto",
                        "poll_every": "15m"}},
        questions=[{"id": f"q{i:02d}", "text": f"Hi {{brand}}, question {i}: can you help?"}
                   for i in range(probes)],
        schedule={"start": date(2026, 3, 2), "end": date(2026, 4, 26),
                  "probes_per_brand": probes, "min_gap": "1h", "seed": 1,
                  "windows": [{"days": "daily", "start": "08:00", "end": "20:00"}]},
        sandbox={"profiles": {
            "fast": {"ack_median": "10m"},
            "slow": {"ack_median": "8h"},
            "holding": {"ack_median": "30m", "holding_share": 1.0, "resolve_after": "2h"},
            "silent": {"answer_rate": 0.0},
        }},
    )


def test_three_runners_sharing_brands_on_three_x_accounts(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    """10,000 probes on X (500 brands × 20) from 3 accounts that share every brand: 3 runners
    (one per account) on PostgreSQL, against the very same study (same 3 accounts, same
    brands) run by 1 runner serving all 3 accounts on SQLite, side by side in one run, each
    against its own standalone sandbox. Like for like: both read 3 accounts' mentions every
    15 virtual minutes. Target: the team within 1.5 × the single runner's wall time. Also
    reported: mentions requests per account (each sandbox's own count), and store statements
    per probe on PostgreSQL."""
    import httpx

    brands = int(os.environ.get("TEAM_BENCH_BRANDS", "500"))
    study = _x_study(tmp_path, brands, X_ACCOUNTS)
    probes = brands * 20
    url = postgres_server.database()
    dbname = url.rsplit("/", 1)[1]
    postgres_server.psql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements", dbname)

    # The runners' own pace, as measured before the fair clock: it would make them take turns.
    with standalone_sandbox() as alone, standalone_sandbox("--no-fair-clock") as team:
        start = time.perf_counter()
        done = subprocess.run(_run(study, str(tmp_path / "one.db"), alone),
                              capture_output=True, text=True, check=False)
        sqlite_wall = time.perf_counter() - start
        assert done.returncode == 0, done.stderr[-2000:]
        alone_truth = httpx.get(f"{alone}/_sandbox/posts", timeout=60).json()
        alone_polls = httpx.get(f"{alone}/_sandbox/stats", timeout=60).json()

        postgres_server.psql("SELECT pg_stat_statements_reset()", dbname)
        start = time.perf_counter()
        runners = [subprocess.Popen(_run(study, url, team, "--account", a),
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                    text=True) for a in X_ACCOUNTS]
        for runner in runners:
            _, err = runner.communicate(timeout=3600)
            assert runner.returncode == 0, err[-2000:]
        team_wall = time.perf_counter() - start
        truth = httpx.get(f"{team}/_sandbox/posts", timeout=60).json()
        team_polls = httpx.get(f"{team}/_sandbox/stats", timeout=60).json()
    statements = int(postgres_server.psql(
        "SELECT sum(calls) FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid "
        f"WHERE d.datname = '{dbname}'", dbname).strip() or 0)
    for posts in (truth, alone_truth):
        texts = [p["text"] for p in posts["posts"]]
        assert len(texts) == len(set(texts)) == probes  # every probe posted, none twice
        assert {p["author"] for p in posts["posts"]} == set(X_ACCOUNTS)
    mentions = "GET /2/users/:id/mentions"
    ratio = team_wall / sqlite_wall
    print(f"\n{probes}-probe study on 3 X accounts sharing every brand: 1 runner (all 3 "
          f"accounts) on SQLite {sqlite_wall:.1f} s, {alone_polls.get(mentions, 0)} mentions "
          f"requests; 3 runners (one per account) on PostgreSQL {team_wall:.1f} s "
          f"({ratio:.2f} ×), {team_polls.get(mentions, 0)} mentions requests; "
          f"{statements} statements on PostgreSQL, {statements / probes:.1f} per probe; "
          f"load average {os.getloadavg()[0]:.1f}")
    assert ratio <= 1.5
