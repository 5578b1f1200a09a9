"""Synthetic study files for the benchmarks, written to a temporary folder."""

from __future__ import annotations

from pathlib import Path


def write_big_study(folder: Path, brands: int = 500, probes: int = 20) -> Path:
    """A sandbox study of ``brands`` × ``probes`` probes on X (10,000 by default)."""
    questions = "\n".join(
        f'[[questions]]\nid = "q{i:02d}"\ntext = "Hi {{brand}}, question number {i} about '
        f'your service: can you help?"\n'
        for i in range(probes)
    )
    rows = ["name,sector,country,x,profile"]
    profiles = ["fast", "slow", "holding", "silent"]
    for i in range(brands):
        rows.append(f"Brand {i:04d},sector{i % 5},UK,brand{i:04d},{profiles[i % 4]}")
    (folder / "big-brands.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    path = folder / "big.toml"
    path.write_text(
        f"""name = "big"
year = 2026
timezone = "Europe/London"
cutoff = "3d"
synthetic = true
brands_csv = "big-brands.csv"

[channels.x]
account = "bench_researcher"
endpoint = "sandbox"
poll_every = "15m"

{questions}
[schedule]
start = 2026-03-02
end = 2026-03-29
probes_per_brand = {probes}
min_gap = "1h"
seed = 1

[[schedule.windows]]
days = "daily"
start = "08:00"
end = "20:00"

[sandbox.profiles.fast]
ack_median = "10m"

[sandbox.profiles.slow]
ack_median = "8h"

[sandbox.profiles.holding]
ack_median = "30m"
holding_share = 1.0
resolve_after = "2h"

[sandbox.profiles.silent]
answer_rate = 0.0
""",
        encoding="utf-8",
    )
    return path
