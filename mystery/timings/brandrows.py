"""Brand rows: a brand's published figures when the probes behind them are not known.

Published surveys often give one figure per brand ("B&Q answered in 9 minutes on average")
rather than one per question. Such a row cannot become timings without inventing probe times,
so it travels beside timings in its own frame and metrics combine the two only where the
arithmetic is exact: counts add up, and a mean over answered probes pools as a weighted mean.
A median or a share "within 1 h" needs every probe's time, so it stays empty wherever brand
rows are involved.

Schema (``schema()``):

===================  ===============  ============================================================
column               type             meaning
===================  ===============  ============================================================
study, series        str              as in timings
year                 int              as in timings
brand, channel       str              as in timings
sector, country      str, may be      as in timings
                     empty
probes               int, may be      how many probes the brand was sent, when published
                     empty
answered             int, may be      how many it answered (published, or ``probes`` × rate)
                     empty
response_rate        float, may be    share of probes answered, as published; empty when not
                     empty            published: *unknown*, never read as 100 % (a brand that
                                      answered everything says ``100%`` in the file)
mean_ack_seconds     float, may be    the published mean time to acknowledgement over the
                     empty            answered probes only
cutoff_seconds       float, may be    the study's stated cutoff, when published
                     empty
published_as         str, may be      ``fastest`` or ``slowest`` when the study itself named
                     empty            the brand so (kept beside mystery's own ranking)
===================  ===============  ============================================================
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import polars as pl

COLUMNS = (
    "study", "series", "year", "brand", "sector", "country", "channel",
    "probes", "answered", "response_rate", "mean_ack_seconds", "cutoff_seconds", "published_as",
)  # fmt: skip


def schema() -> pl.Schema:
    """The polars schema of a brand-rows frame."""
    import polars as pl

    types: dict[str, pl.DataType] = {
        "year": pl.Int32(),
        "probes": pl.Int64(),
        "answered": pl.Int64(),
        "response_rate": pl.Float64(),
        "mean_ack_seconds": pl.Float64(),
        "cutoff_seconds": pl.Float64(),
    }
    return pl.Schema({name: types.get(name, pl.String()) for name in COLUMNS})


def empty() -> pl.DataFrame:
    """A brand-rows frame with no rows (most studies have none)."""
    import polars as pl

    return pl.DataFrame(schema=schema())


def frame(rows: Iterable[Mapping[str, Any]]) -> pl.DataFrame:
    """Build a brand-rows frame from validated row mappings, in a stable row order."""
    import polars as pl

    materialised = [{c: row.get(c) for c in COLUMNS} for row in rows]
    if not materialised:
        return empty()
    df = pl.DataFrame(materialised, schema=schema(), orient="row")
    return df.sort(["study", "channel", "brand"], maintain_order=True)
