"""Study rows: what a published study said about itself as a whole.

Published surveys print a top 10 of 395 brands, or five brands of ten, beside the study's own
totals ("395 brands, 1,185 questions, 62 % answered, 11 h on average") and often an aggregate
row (``ALL (40 leading UK retailers)``). Those are figures of the study, not of a brand: a
year's row must show them rather than what the file happens to list, and an aggregate must
never be ranked against the brands it sums up. One study row per study × channel carries them.

Schema (``schema()``):

===================  ===============  ============================================================
column               type             meaning
===================  ===============  ============================================================
study, series        str              as in timings
year                 int              as in timings
channel              str              as in timings
label                str, may be      the row's own name in the source (``ALL (…)``), if any
                     empty
brands               int, may be      how many brands the study asked, when published
                     empty
probes, answered     int, may be      the study's published totals
                     empty
response_rate        float, may be    the study's published response rate
                     empty
mean_ack_seconds     float, may be    the study's published mean time (``statistic`` mean)
                     empty
median_ack_seconds   float, may be    the study's published median time (``statistic`` median)
                     empty
listed               str              which brands the file lists: ``all``, ``fastest`` (its N
                                      fastest), ``slowest`` (its N slowest) or ``some``
cutoff_seconds       float, may be    the study's stated cutoff, when published
                     empty
===================  ===============  ============================================================
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import polars as pl

COLUMNS = (
    "study", "series", "year", "channel", "label", "brands", "probes", "answered",
    "response_rate", "mean_ack_seconds", "median_ack_seconds", "listed", "cutoff_seconds",
)  # fmt: skip


def schema() -> pl.Schema:
    """The polars schema of a study-rows frame."""
    import polars as pl

    types: dict[str, pl.DataType] = {
        "year": pl.Int32(),
        **{c: pl.Int64() for c in ("brands", "probes", "answered")},
        **{c: pl.Float64() for c in ("response_rate", "mean_ack_seconds",
                                     "median_ack_seconds", "cutoff_seconds")},
    }
    return pl.Schema({name: types.get(name, pl.String()) for name in COLUMNS})


def empty() -> pl.DataFrame:
    """A study-rows frame with no rows (most studies are measured, or published whole)."""
    import polars as pl

    return pl.DataFrame(schema=schema())


def frame(rows: Iterable[Mapping[str, Any]]) -> pl.DataFrame:
    """Build a study-rows frame from validated row mappings, in a stable row order."""
    import polars as pl

    materialised = [{c: row.get(c) for c in COLUMNS} for row in rows]
    if not materialised:
        return empty()
    df = pl.DataFrame(materialised, schema=schema(), orient="row")
    return df.sort(["study", "channel"], maintain_order=True)
