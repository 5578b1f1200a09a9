"""Synthetic studies for tests and benchmarks: deterministic timings written as publish reads them.

Not a test module: a helper that writes ``results/<study>/timings.csv`` and ``study.json`` for
a made-up series, vectorised with NumPy so a million probes take a second, not a minute.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl

from mystery.timings import schema as timings
from mystery.timings.studyinfo import StudyInfo

SECTORS = ("grocery", "fashion", "DIY", "electronics", "department store")


def make_study(
    root: Path,
    *,
    series: str,
    year: int,
    brands: int,
    channels: tuple[str, ...] = ("x",),
    probes_per_brand: int = 3,
    seed: int = 0,
    synthetic: bool = True,
    cutoff_seconds: float = 7 * 86400.0,
) -> pl.DataFrame:
    """Write one synthetic study of ``series`` for ``year``; return its timings."""
    rng = np.random.default_rng(seed + year)
    name = f"{series}-{year}"
    n = brands * len(channels) * probes_per_brand
    brand_index = np.repeat(np.arange(brands), len(channels) * probes_per_brand)
    channel_index = np.tile(np.repeat(np.arange(len(channels)), probes_per_brand), brands)
    start = datetime(year, 3, 2, 9, tzinfo=UTC).timestamp() * 1000
    sent = start + rng.integers(0, 14 * 86400 * 1000, n)
    brand_median = 60 * np.exp(rng.normal(4, 1.5, brands))  # minutes to a day or two
    answer_rate = np.clip(rng.normal(0.9, 0.15, brands), 0.0, 1.0)
    ack = brand_median[brand_index] * np.exp(rng.normal(0, 0.7, n))
    answered = (rng.random(n) < answer_rate[brand_index]) & (ack <= cutoff_seconds)
    resolution = ack * (1 + rng.exponential(1.0, n))
    resolved = answered & (rng.random(n) < 0.7) & (resolution <= cutoff_seconds)
    df = pl.DataFrame(
        {
            "study": name,
            "series": series,
            "year": np.full(n, year, dtype=np.int32),
            "brand": [f"Brand {i:03d}" for i in brand_index],
            "sector": [SECTORS[i % len(SECTORS)] for i in brand_index],
            "country": "UK",
            "channel": [channels[i] for i in channel_index],
            "question": [f"q{i % probes_per_brand}" for i in range(n)],
            "sent_at": pl.Series(np.round(sent).astype("int64")).cast(pl.Datetime("ms", "UTC")),
            "ack_seconds": np.where(answered, np.round(ack, 3), np.nan),
            "resolution_seconds": np.where(resolved, np.round(resolution, 3), np.nan),
            "status": np.where(answered, "answered", "unanswered"),
            "cutoff_seconds": cutoff_seconds,
        }
    ).with_columns(pl.col("ack_seconds", "resolution_seconds").fill_nan(None))
    df = df.select(timings.COLUMNS).cast(timings.schema())
    folder = root / "results" / name
    timings.write_csv(df, folder / "timings.csv")
    StudyInfo(
        name=name,
        series=series,
        year=year,
        title=f"{series} {year}",
        timezone="Europe/London",
        synthetic=synthetic,
        cutoff_seconds=cutoff_seconds,
    ).write(folder)
    return df


def edit_slowest_answer(timings_csv: Path) -> None:
    """Make the study's slowest acknowledgement one second: its brand's median moves."""
    lines = timings_csv.read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    ack = header.index("ack_seconds")
    rows = [line.split(",") for line in lines[1:]]
    slowest = max((r for r in rows if r[ack]), key=lambda r: float(r[ack]))
    slowest[ack] = "1.000"
    timings_csv.write_text("\n".join([lines[0], *(",".join(r) for r in rows)]) + "\n",
                           encoding="utf-8")
