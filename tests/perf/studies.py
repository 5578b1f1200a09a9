"""Synthetic study files for the benchmarks, written to a temporary folder."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from tests.studybuilder import write_study


def write_big_study(folder: Path, brands: int = 500, probes: int = 20) -> Path:
    """A sandbox study of ``brands`` × ``probes`` probes on X (10,000 by default)."""
    rows = ["name,sector,country,x,profile"]
    profiles = ["fast", "slow", "holding", "silent"]
    for i in range(brands):
        rows.append(f"Brand {i:04d},sector{i % 5},UK,brand{i:04d},{profiles[i % 4]}")
    (folder / "big-brands.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return write_study(
        folder, filename="big.toml", name="big", cutoff="3d", brands_csv="big-brands.csv",
        brands=None,
        channels={"x": {"account": "bench_researcher", "endpoint": "sandbox",
                        "poll_every": "15m"}},
        questions=[{"id": f"q{i:02d}",
                    "text": f"Hi {{brand}}, question number {i} about your service: can you help?"}
                   for i in range(probes)],
        schedule={"start": date(2026, 3, 2), "end": date(2026, 3, 29), "probes_per_brand": probes,
                  "min_gap": "1h", "seed": 1,
                  "windows": [{"days": "daily", "start": "08:00", "end": "20:00"}]},
        sandbox={"profiles": {
            "fast": {"ack_median": "10m"},
            "slow": {"ack_median": "8h"},
            "holding": {"ack_median": "30m", "holding_share": 1.0, "resolve_after": "2h"},
            "silent": {"answer_rate": 0.0},
        }},
    )
