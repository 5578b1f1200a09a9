"""What published studies said about themselves, beside what mystery computes from them.

``yoy.csv`` keeps both, clearly named, because they can differ and a reader must see both:

* ``source``: ``measured`` (mystery's own runs), ``published`` (figures others published) or
  ``published and measured`` (a year with both);
* a **partial** published study (a top 10 of 395 brands, five of ten) reports the study's own
  published totals in ``brands``, ``probes``, ``answered`` and ``response_rate``, never the
  file's; ``brands_listed`` says how many brands the file lists and ``listed`` which ones
  (``all``, ``fastest``, ``slowest``, ``some``). A total the study did not publish is empty;
* mystery's own fastest (slowest) brand is only named when the list holds the study's fastest
  (slowest) brands: the slowest of a top-10 list is the 10th fastest, not the slowest;
* the study's own extremes as it published them (``published_fastest_brand`` …) and its own
  average (``published_mean_minutes`` or ``published_median_minutes``, by its statistic).

Kept apart from :mod:`.series` so that the published side and the statistics of the same
table can change without touching each other.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import polars as pl

KEYS = ["series", "year", "channel"]
_COUNTS = ("brands", "probes", "answered", "response_rate")


def _sources(timings: pl.DataFrame, brand_rows: pl.DataFrame, study_rows: pl.DataFrame,
             measured: Collection[str]) -> pl.DataFrame:
    """Per cell: its studies and whether each is measured."""
    import polars as pl

    parts = [df.select([*KEYS, "study"]) for df in (timings, brand_rows, study_rows)]
    cells = pl.concat(parts).unique()
    return cells.with_columns(measured=pl.col("study").is_in(list(measured)))


def overlay(
    yoy: pl.DataFrame, timings: pl.DataFrame, brand_rows: pl.DataFrame,
    study_rows: pl.DataFrame, measured: Collection[str],
) -> pl.DataFrame:
    """``yoy`` with the published columns added and a partial study's totals put in place
    (see the module docstring). ``measured``: the names of mystery's own studies."""
    import polars as pl

    cells = _sources(timings, brand_rows, study_rows, measured)
    kinds = cells.group_by(KEYS).agg(
        studies=pl.col("study").n_unique(),
        any_measured=pl.col("measured").any(), any_published=(~pl.col("measured")).any(),
    ).with_columns(source=pl.when(pl.col("any_measured") & pl.col("any_published"))
                   .then(pl.lit("published and measured"))
                   .when(pl.col("any_measured")).then(pl.lit("measured"))
                   .otherwise(pl.lit("published")))
    study = study_rows.select(
        *KEYS, s_brands="brands", s_probes="probes", s_answered="answered",
        s_rate="response_rate", listed="listed", published_mean_seconds="mean_ack_seconds",
        published_median_seconds="median_ack_seconds",
    )
    extremes = [
        brand_rows.filter(pl.col("published_as") == which).select(
            *KEYS, pl.col("brand").alias(f"published_{which}_brand"),
            pl.col("mean_ack_seconds").alias(f"published_{which}_seconds"))
        for which in ("fastest", "slowest")
    ]
    out = yoy.join(kinds.select([*KEYS, "studies", "source"]), on=KEYS, how="left")
    out = out.join(study, on=KEYS, how="left")
    for part in extremes:
        out = out.join(part, on=KEYS, how="left")
    whole = pl.col("listed").is_null() | (pl.col("listed") == "all")
    alone = pl.col("studies") == 1
    out = out.with_columns(
        brands_listed=pl.col("brands"),
        listed=pl.col("listed").fill_null("all"),
    )
    # A partial study's totals are the study's as published (or unknown), never the file's;
    # a whole list keeps what its rows add up to unless the study row says more.
    published = {"brands": "s_brands", "probes": "s_probes", "answered": "s_answered",
                 "response_rate": "s_rate"}
    out = out.with_columns(
        pl.when(whole).then(pl.coalesce(source, name))
        .when(alone).then(pl.col(source))
        .otherwise(None).cast(out.schema[name]).alias(name)
        for name, source in published.items()
    )
    fastest_known = pl.col("listed").is_in(["all", "fastest"])
    slowest_known = pl.col("listed").is_in(["all", "slowest"])
    out = out.with_columns(
        fastest_brand=pl.when(fastest_known).then("fastest_brand"),
        fastest_seconds=pl.when(fastest_known).then("fastest_seconds"),
        slowest_brand=pl.when(slowest_known).then("slowest_brand"),
        slowest_seconds=pl.when(slowest_known).then("slowest_seconds"),
    )
    return out.drop("studies", "s_brands", "s_probes", "s_answered", "s_rate")
